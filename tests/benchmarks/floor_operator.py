"""The framework's floor: the least a kopf operator can do for a Guardrail.

On create it POSTs one ConfigMap carrying the spec and sets Ready in status, nothing else: no
parsing into models, no validation, no child watches, no resync, no pruning. `reconcile.py` runs
it next to `llmops run` so the difference between the two is our overhead.

Run: KUBECONFIG=... python tests/benchmarks/floor_operator.py NAMESPACE
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import aiohttp
import kopf

from llmops_operator.k8s import kubeconfig

SESSION: dict[str, aiohttp.ClientSession] = {}


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.enabled = False
    connection = kubeconfig.load()
    SESSION["http"] = aiohttp.ClientSession(connection.server,
                                            connector=aiohttp.TCPConnector(ssl=connection.ssl_context()),
                                            headers={"Authorization": f"Bearer {connection.token}"})


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_with_kubeconfig(**kwargs)


@kopf.on.create("llmops.dev", "v1alpha1", "guardrails")
async def create(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    meta = body["metadata"]
    config_map = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"{meta['name']}-policy", "namespace": meta["namespace"],
                     "ownerReferences": [{"apiVersion": body["apiVersion"], "kind": body["kind"],
                                          "name": meta["name"], "uid": meta["uid"], "controller": True}]},
        "data": {"policy.json": json.dumps(dict(body["spec"]), sort_keys=True)},
    }
    async with SESSION["http"].post(f"/api/v1/namespaces/{meta['namespace']}/configmaps", json=config_map) as resp:
        if resp.status not in (201, 409):
            raise kopf.TemporaryError(f"ConfigMap: HTTP {resp.status}", delay=1)
    patch.status["observedGeneration"] = meta.get("generation")
    patch.status["conditions"] = [{"type": "Ready", "status": "True", "reason": "Compiled", "message": "",
                                   "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]


def main() -> None:
    asyncio.run(kopf.operator(standalone=True, namespaces=[sys.argv[1]], clusterwide=False))


if __name__ == "__main__":
    main()
