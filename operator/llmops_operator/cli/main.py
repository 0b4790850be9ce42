"""`llmops`: generate CRDs, preview children, run the operator; installed plugins add more (`llmops sandbox`)."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
PLUGIN_GROUP = "llmops.commands"
"""Entry points that add subcommands: each is a function taking the subparsers (the sandbox registers here)."""


def _cmd_crds(args: argparse.Namespace) -> int:
    from llmops_operator.api.crdgen import generated_crds, write_crds
    from llmops_operator.api.docgen import api_reference

    root = Path(args.root)
    targets = [root / "crds", root / "charts" / "llmops-operator" / "crds"]
    reference = root / "docs" / "api-reference.md"
    if args.check:
        stale = [str(t / name) for t in targets for name, text in generated_crds().items()
                 if not (t / name).exists() or (t / name).read_text() != text]
        if not reference.exists() or reference.read_text() != api_reference():
            stale.append(str(reference))
        if stale:
            print("stale generated files (run `llmops crds`):\n  " + "\n  ".join(stale), file=sys.stderr)
            return 1
        return 0
    reference.parent.mkdir(parents=True, exist_ok=True)
    if not reference.exists() or reference.read_text() != api_reference():
        reference.write_text(api_reference())
    for path in [*write_crds(targets), reference]:
        print(path.relative_to(root) if path.is_relative_to(root) else path)
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from llmops_operator.cli.render import RenderError, render_paths

    try:
        documents = render_paths([Path(p) for p in args.filename])
    except RenderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    yaml.safe_dump_all(documents, sys.stdout, sort_keys=False, width=120)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from llmops_operator.cli.run import election_from_environment, run_operator

    election = election_from_environment(args.lease_name, args.lease_namespace) if args.leader_elect else None
    return run_operator(namespaces=args.namespace, all_namespaces=args.all_namespaces,
                        liveness_port=args.liveness_port, metrics_port=args.metrics_port, election=election)


def _cmd_search(args: argparse.Namespace) -> int:
    import base64
    import os

    from llmops_operator.api.v1alpha1 import BY_KIND
    from llmops_operator.backends.milvus import MilvusError
    from llmops_operator.k8s.blocking import BlockingClient
    from llmops_operator.k8s.resources import ApiResource, resource_for
    from llmops_operator.cli.search import format_hits, search, target_of

    kind = BY_KIND["VectorIndex"]
    client = BlockingClient()
    body = client.get(ApiResource(kind.model_fields["api_version"].default, "VectorIndex", kind.info.plural),
                      args.namespace, args.name)
    if body is None:
        print(f"error: VectorIndex {args.namespace}/{args.name} not found", file=sys.stderr)
        return 1
    token = None
    ref = (body["spec"]["milvus"].get("secretRef") or {})
    if ref:
        secret = client.get(resource_for("v1", "Secret"), args.namespace, ref["name"]) or {}
        token = base64.b64decode((secret.get("data") or {}).get(ref["key"], "")).decode() or None
    pvc_root = args.pvc_root or os.environ.get("LLMOPS_PVC_ROOT") or str(Path(".sandbox") / "pvc")
    try:
        hits = search(target_of(body), args.query, args.k, token, pvc_root)
    except (ValueError, MilvusError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_hits(hits) if hits else "no results")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from llmops_operator.k8s.blocking import BlockingClient
    from llmops_operator.cli.live_fleet import print_status

    client = BlockingClient(args.kubeconfig)
    namespace = None if args.all_namespaces else (args.namespace or client.conn.default_namespace or "default")
    return print_status(client, namespace, sys.stdout, sys.stderr)


def _cmd_guardrail_test(args: argparse.Namespace) -> int:
    from llmops_operator.cli.guardrail_test import guardrail_test

    split = args.split or ("heldout" if args.corpus else None)
    split = None if split == "all" else split
    return guardrail_test(Path(args.filename), Path(args.input) if args.input else None, sys.stdout, sys.stderr,
                          split=split, min_detection=args.min_detection,
                          max_false_positives=args.max_false_positives, per_family=not args.overall_only)


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {value!r}") from None
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {value!r}")
    return rate


def _add_guardrail_commands(sub: "argparse._SubParsersAction") -> None:
    guardrail = sub.add_parser("guardrail", help="work with Guardrail policies").add_subparsers(
        dest="guardrail_command", required=True)
    test = guardrail.add_parser("test", help="score a Guardrail policy on labelled texts: a JSONL file or the "
                                "shipped corpus; rates per family and language, optionally as a gate")
    test.add_argument("-f", "--filename", required=True, help="a Guardrail manifest or a compiled policy.json")
    source = test.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help='JSON Lines: {"text", "direction", "label", "family", "language", '
                        '"split"} per line (only text is required); prints a verdict per line')
    source.add_argument("--corpus", action="store_true", help="the labelled corpus shipped with the guardrails")
    test.add_argument("--split", choices=["train", "validation", "heldout", "all"], default=None,
                      help="only cases of this split (default: heldout with --corpus, every line with --input)")
    test.add_argument("--min-detection", type=_rate, help="exit 1 if the overall or any family's detection rate "
                      "is below this (0..1)")
    test.add_argument("--max-false-positives", type=_rate, help="exit 1 if the overall or any family's "
                      "false-positive rate is above this (0..1)")
    test.add_argument("--overall-only", action="store_true", help="apply the thresholds to the overall rates only, "
                      "not to each family")
    test.set_defaults(func=_cmd_guardrail_test)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="llmops", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    _add_guardrail_commands(sub)

    crds = sub.add_parser("crds", help="generate crds/, the chart's copies and docs/api-reference.md from the API models")
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
    run.add_argument("--leader-elect", action="store_true",
                     help="act only while holding a coordination.k8s.io Lease (needed for more than one replica)")
    run.add_argument("--lease-name", default="llmops-operator", help="the Lease's name (default: llmops-operator)")
    run.add_argument("--lease-namespace", default=None,
                     help="the Lease's namespace (default: POD_NAMESPACE, else the service account's namespace)")
    run.set_defaults(func=_cmd_run)

    status = sub.add_parser("status", help="the fleet table: every llmops.dev object with Ready, phase, cost, "
                                           "drift and safety, from the live API")
    where = status.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", help="this namespace (default: the kubeconfig's, else default)")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    status.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster credentials, else $KUBECONFIG)")
    status.set_defaults(func=_cmd_status)

    search = sub.add_parser("search", help="the chunks of a VectorIndex nearest to a query (needs the vector extra)")
    search.add_argument("name", help="the VectorIndex")
    search.add_argument("query", help="the text to search for")
    search.add_argument("-n", "--namespace", default="default", help="its namespace (default: default)")
    search.add_argument("-k", type=int, default=5, help="how many chunks to show (default: 5)")
    search.add_argument("--pvc-root", help="where pvc:// claims are on this machine (default: $LLMOPS_PVC_ROOT, "
                                           "else .sandbox/pvc, the sandbox's claims)")
    search.set_defaults(func=_cmd_search)
    for plugin in entry_points(group=PLUGIN_GROUP):
        plugin.load()(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
