"""`llmops sandbox`: the subcommand this package adds to the `llmops` CLI (entry point group llmops.commands)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from llmops_sandbox.main import run_sandbox

    claims = {}
    for claim in args.claim:
        name, sep, source = claim.partition("=")
        if not sep or not name or not Path(source).is_dir():
            print(f"--claim {claim}: expected NAME=DIRECTORY with an existing directory", file=sys.stderr)
            return 2
        claims[name] = Path(source)
    return run_sandbox(Path(args.workdir), [Path(p) for p in args.apply], args.port, args.once, args.timeout,
                       claims=claims, until_settled=args.until_settled, apiserver=args.apiserver)

def register(subcommands: argparse._SubParsersAction) -> None:
    sandbox = subcommands.add_parser("sandbox", help="run the API, the operator and local stand-ins on this machine")
    sandbox.add_argument("--apply", action="append", default=[], metavar="PATH",
                         help="apply these manifests and wait until they are reconciled (repeatable)")
    sandbox.add_argument("--workdir", default=".sandbox", help="where the kubeconfig and local state go")
    sandbox.add_argument("--port", type=int, default=0, help="API server port on 127.0.0.1 (0: any free port)")
    sandbox.add_argument("--once", action="store_true", help="exit after applying and printing the table")
    sandbox.add_argument("--timeout", type=float, default=600, help="seconds to wait for reconciliation")
    sandbox.add_argument("--claim", action="append", default=[], metavar="NAME=DIR",
                         help="provide PersistentVolumeClaim NAME as a local directory seeded from DIR (repeatable)")
    sandbox.add_argument("--until-settled", action="store_true",
                         help="after applying, wait until every object is Ready or has finished unready")
    sandbox.add_argument("--apiserver", choices=("emulator", "real"), default="emulator",
                         help="emulator: the in-process API (no Go needed); real: etcd, kube-apiserver and "
                              "kube-controller-manager as `make kube` builds them")
    sandbox.set_defaults(func=_cmd_sandbox)
