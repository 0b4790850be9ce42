"""Ports for the sandbox's servers that nothing else on the machine can take between the pick and the bind.

A port found by binding to port 0 comes from the kernel's ephemeral range, the same range every outgoing
connection on the machine takes its local port from. Between closing the probe and the server's own bind (seconds
for a Ray daemon on a busy machine) another process's connection can take it, and the server fails with
`Address already in use`. Ports outside that range are only ever taken by a process that asks for them by number.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_EPHEMERAL_RANGE = (32768, 60999)
LOWEST = 20000
"""Below it: well-known services and Ray's worker ports (10002-19999 by default)."""


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(word) for word in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return LINUX_EPHEMERAL_RANGE
    return low, high


def candidates() -> list[int]:
    """The ports outside the ephemeral range and above LOWEST, in random order."""
    low, high = ephemeral_range()
    ports = [port for port in range(LOWEST, 65536) if not low <= port <= high]
    random.shuffle(ports)
    return ports


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


_handed_out: set[int] = set()
"""Ports this process has picked: their servers may not have bound them yet, so they look free."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now on `host`, outside the ephemeral range when that leaves any; else one the kernel picks."""
    for port in candidates()[:200]:
        if port not in _handed_out and is_free(port, host):
            _handed_out.add(port)
            return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
