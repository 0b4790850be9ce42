"""Every pod the operator renders passes the Pod Security Standards' `restricted` profile (pure).

The pod runs as a non-root user with the runtime's default seccomp profile; every container drops all
capabilities and cannot gain privileges. The images must therefore run as a numeric non-root UID (the
operator's image runs as 65532). The service-account token is mounted only into pods that call the
Kubernetes API: the ones that report progress through their object's ConfigMap.
"""

from __future__ import annotations

import copy
from typing import Any

POD_SECURITY_CONTEXT = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY_CONTEXT = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                              "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def harden_container(container: dict[str, Any]) -> dict[str, Any]:
    container["securityContext"] = copy.deepcopy(CONTAINER_SECURITY_CONTEXT)
    return container


def harden_pod(pod: dict[str, Any], *, calls_api: bool, containers: list[dict[str, Any]] | None = None
               ) -> dict[str, Any]:
    """`pod` (a PodSpec, or a KServe component that inlines one) restricted, with the token only if `calls_api`.

    `containers`: the pod's containers when they are not under `containers` (a KServe predictor's `model`)."""
    pod["securityContext"] = copy.deepcopy(POD_SECURITY_CONTEXT)
    pod["automountServiceAccountToken"] = calls_api
    for container in containers if containers is not None else pod.get("containers", []):
        harden_container(container)
    return pod
