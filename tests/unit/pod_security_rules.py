"""The Pod Security Standards' `baseline` and `restricted` rules as a pure check of one pod spec.

Written from the published standard (kubernetes.io/docs/concepts/security/pod-security-standards): each
function returns what the `restricted` admission level would refuse, one line per problem; [] passes.
"""

from __future__ import annotations

from typing import Any

ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
                   "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}


def containers_of(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod.get("containers", []), *pod.get("ephemeralContainers", [])]


def _pod_level(pod: dict[str, Any]) -> list[str]:
    problems = [f"{key} must not be true" for key in ("hostNetwork", "hostPID", "hostIPC") if pod.get(key) is True]
    context = pod.get("securityContext") or {}
    for volume in pod.get("volumes", []):
        kind = next((k for k in volume if k != "name"), None)
        if kind not in ALLOWED_VOLUMES:
            problems.append(f"volume {volume.get('name')!r} of type {kind!r} is not allowed")
    for sysctl in context.get("sysctls", []):
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"sysctl {sysctl.get('name')!r} is not allowed")
    if context.get("runAsUser") == 0:
        problems.append("securityContext.runAsUser must not be 0")
    if (context.get("seLinuxOptions") or {}).get("type") not in (None, "", "container_t", "container_init_t",
                                                                  "container_kvm_t", "container_engine_t"):
        problems.append("securityContext.seLinuxOptions.type is not allowed")
    if (context.get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
        problems.append("securityContext.appArmorProfile.type is not allowed")
    return problems


def _container(container: dict[str, Any], pod_context: dict[str, Any]) -> list[str]:
    name = container.get("name", "?")
    context = container.get("securityContext") or {}
    problems = []
    if context.get("privileged") is True:
        problems.append(f"container {name!r}: privileged")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append(f"container {name!r}: allowPrivilegeEscalation must be false")
    capabilities = context.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append(f"container {name!r}: capabilities must drop ALL")
    if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
        problems.append(f"container {name!r}: only NET_BIND_SERVICE may be added")
    if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
        problems.append(f"container {name!r}: runAsNonRoot must be true (pod or container)")
    if context.get("runAsUser") == 0:
        problems.append(f"container {name!r}: runAsUser must not be 0")
    seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
    if seccomp not in ALLOWED_SECCOMP:
        problems.append(f"container {name!r}: seccompProfile must be RuntimeDefault or Localhost (pod or container)")
    if context.get("procMount", "Default") != "Default":
        problems.append(f"container {name!r}: procMount must be Default")
    if any(port.get("hostPort") for port in container.get("ports", [])):
        problems.append(f"container {name!r}: hostPort is not allowed")
    return problems


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What Pod Security `restricted` refuses in `pod` (a PodSpec); [] when it passes."""
    context = pod.get("securityContext") or {}
    problems = _pod_level(pod)
    if not containers_of(pod):
        problems.append("no containers")
    for container in containers_of(pod):
        problems.extend(_container(container, context))
    return problems
