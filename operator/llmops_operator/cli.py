"""`llmops`: generate CRDs, preview children, run the operator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cmd_crds(args: argparse.Namespace) -> int:
    from llmops_operator.api.crdgen import generated_crds, write_crds

    root = Path(args.root)
    targets = [root / "crds", root / "charts" / "llmops-operator" / "crds"]
    if args.check:
        stale = [str(t / name) for t in targets for name, text in generated_crds().items()
                 if not (t / name).exists() or (t / name).read_text() != text]
        if stale:
            print("stale CRDs (run `llmops crds`):\n  " + "\n  ".join(stale), file=sys.stderr)
            return 1
        return 0
    for path in write_crds(targets):
        print(path.relative_to(root) if path.is_relative_to(root) else path)
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from llmops_operator.render import RenderError, render_paths

    try:
        documents = render_paths([Path(p) for p in args.filename])
    except RenderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    yaml.safe_dump_all(documents, sys.stdout, sort_keys=False, width=120)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from llmops_operator.run import run_operator

    return run_operator(namespaces=args.namespace, all_namespaces=args.all_namespaces,
                        liveness_port=args.liveness_port, metrics_port=args.metrics_port)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="llmops", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    crds = sub.add_parser("crds", help="generate crds/ and the chart's copies from the API models")
    crds.add_argument("--root", default=str(REPO_ROOT), help="repository root (default: this checkout)")
    crds.add_argument("--check", action="store_true", help="exit 1 if the checked-in CRDs are stale")
    crds.set_defaults(func=_cmd_crds)

    render = sub.add_parser("render", help="print the children the operator would create, without a cluster")
    render.add_argument("-f", "--filename", action="append", required=True,
                        help="a manifest file or a directory of them (repeatable)")
    render.set_defaults(func=_cmd_render)

    run = sub.add_parser("run", help="run the operator")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    run.add_argument("--liveness-port", type=int, default=8080, help="serve /healthz on this port (0: off)")
    run.add_argument("--metrics-port", type=int, default=9090, help="serve Prometheus /metrics on this port (0: off)")
    run.set_defaults(func=_cmd_run)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
