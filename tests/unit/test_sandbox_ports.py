"""The sandbox's servers get ports that no other process's outgoing connection can take before they bind them."""

from __future__ import annotations

import socket

import pytest

from llmops_sandbox import ports


def test_a_free_port_is_outside_the_range_connections_take_their_local_ports_from():
    low, high = ports.ephemeral_range()
    for _ in range(50):
        port = ports.free_port()
        assert not low <= port <= high and port >= ports.LOWEST
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def kernel_picked_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_port_is_handed_out_once_though_its_server_has_not_bound_it_yet(monkeypatch):
    first, second = kernel_picked_port(), kernel_picked_port()
    while second == first:
        second = kernel_picked_port()
    monkeypatch.setattr(ports, "candidates", lambda: [first, second])
    monkeypatch.setattr(ports, "_handed_out", set())
    assert ports.free_port() == first and ports.is_free(first)
    assert ports.free_port() == second


def test_a_port_in_use_is_never_picked(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr(ports, "candidates", lambda: [busy, busy + 1 if busy < 65535 else busy - 1])
        assert ports.free_port() != busy


@pytest.mark.parametrize("text,expected", [("32768\t60999\n", (32768, 60999)), ("1024 65535", (1024, 65535)),
                                           ("garbage", ports.LINUX_EPHEMERAL_RANGE)])
def test_the_ephemeral_range_is_read_from_the_kernel(tmp_path, monkeypatch, text, expected):
    (tmp_path / "range").write_text(text)
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE_FILE", tmp_path / "range")
    assert ports.ephemeral_range() == expected


def test_with_no_port_outside_the_ephemeral_range_the_kernel_picks_one(tmp_path, monkeypatch):
    (tmp_path / "range").write_text("1024 65535")
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE_FILE", tmp_path / "range")
    assert ports.candidates() == []
    assert 1024 <= ports.free_port() <= 65535
