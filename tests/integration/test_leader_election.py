"""Leader election on a Lease against the API emulator: of two replicas only one leads, a leader that cannot
renew stops acting before anyone else may take over, and the operator process stops when it loses the Lease."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from datetime import datetime, timezone

from llmops_operator.cli.run import LOST_LEADERSHIP, lead_then_operate
from llmops_operator.core.settings import Settings
from llmops_operator.k8s import kubeconfig
from llmops_operator.k8s.client import ApiClient, Conflict
from llmops_operator.k8s.leader import LEASES, Election, LeaderElector, micro_time


@pytest.fixture
def lease_namespace(kube) -> str:
    name = f"lease-{uuid.uuid4().hex[:8]}"
    kube.create_namespace(name)
    return name


def election(namespace: str, identity: str) -> Election:
    return Election(namespace=namespace, name="llmops-operator", identity=identity, lease_seconds=2.0,
                    renew_seconds=0.3, retry_seconds=0.1)


def test_two_replicas_racing_for_the_lease_never_both_win(lease_namespace):
    async def main() -> list[bool]:
        async with ApiClient(kubeconfig.load()) as a, ApiClient(kubeconfig.load()) as b:
            won = []
            for _ in range(5):
                first = LeaderElector(a, election(lease_namespace, "replica-a"))
                second = LeaderElector(b, election(lease_namespace, "replica-b"))
                won.append(sorted(await asyncio.gather(first.try_acquire_or_renew(),
                                                       second.try_acquire_or_renew())))
            return won
    rounds = asyncio.run(main())
    assert rounds[0] == [False, True], "exactly one replica takes a free Lease"
    assert all(r.count(True) <= 1 for r in rounds)


def test_a_standby_takes_over_only_after_the_leader_stops_renewing(lease_namespace):
    async def main() -> tuple[float, str]:
        async with ApiClient(kubeconfig.load()) as api:
            leader = LeaderElector(api, election(lease_namespace, "replica-a"))
            standby = LeaderElector(api, election(lease_namespace, "replica-b"))
            await leader.acquire()
            holding = asyncio.create_task(leader.hold())
            await asyncio.sleep(1.0)
            assert not await standby.try_acquire_or_renew(), "the standby took a Lease being renewed"
            holding.cancel()  # the leader's renewals stop (a partitioned node)
            stopped = time.monotonic()
            await standby.acquire()
            lease = await api.get(LEASES, lease_namespace, "llmops-operator")
            return time.monotonic() - stopped, lease["spec"]["holderIdentity"]
    waited, holder = asyncio.run(main())
    assert holder == "replica-b" and waited >= 1.0


async def steal(api: ApiClient, namespace: str) -> float:
    """Another replica takes the Lease (a write that may race the leader's renewals); when it landed."""
    while True:
        lease = await api.get(LEASES, namespace, "llmops-operator")
        lease["spec"].update(holderIdentity="replica-b", renewTime=micro_time(datetime.now(timezone.utc)),
                             leaseDurationSeconds=60)
        try:
            await api.request("PUT", LEASES.path(namespace, "llmops-operator"), lease)
            return time.monotonic()
        except Conflict:
            continue


def test_a_leader_that_loses_the_lease_stops_operating(lease_namespace):
    """The real operator runs while leading; when another replica holds the Lease, it stops within the duration."""
    settings = Settings(resync_seconds=5)

    async def main() -> tuple[int, float]:
        stop = asyncio.Event()
        me = election(lease_namespace, "replica-a")
        running = asyncio.create_task(lead_then_operate(settings, [f"none-{uuid.uuid4().hex[:6]}"], me,
                                                        stop_flag=stop))
        async with ApiClient(kubeconfig.load()) as api:
            for _ in range(100):
                lease = await api.get_or_none(LEASES, lease_namespace, "llmops-operator")
                if lease and lease["spec"].get("holderIdentity") == "replica-a":
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            assert not running.done(), "the operator stopped while still leading"
            taken = await steal(api, lease_namespace)
            code = await asyncio.wait_for(running, 30)
            return code, time.monotonic() - taken
    code, took = asyncio.run(main())
    assert code == LOST_LEADERSHIP and took < 2.0


def test_a_standby_replica_answers_its_liveness_probe_while_it_waits(lease_namespace):
    """Kubernetes would restart a standby whose /healthz does not answer; it answers without reconciling."""
    import aiohttp

    from llmops_sandbox.ports import free_port

    port = free_port()

    async def main() -> tuple[int, dict]:
        async with ApiClient(kubeconfig.load()) as api:
            holder = LeaderElector(api, election(lease_namespace, "replica-b"))
            assert await holder.try_acquire_or_renew()
            await steal(api, lease_namespace)  # held for 60 s by replica-b
            waiting = asyncio.create_task(lead_then_operate(Settings(), ["none"], election(lease_namespace, "a"),
                                                            liveness_port=port))
            try:
                async with aiohttp.ClientSession() as http:
                    for _ in range(100):
                        try:
                            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                                return resp.status, await resp.json()
                        except aiohttp.ClientConnectionError:
                            await asyncio.sleep(0.05)
                raise AssertionError("the standby never served /healthz")
            finally:
                waiting.cancel()
                await asyncio.gather(waiting, return_exceptions=True)
    assert asyncio.run(main()) == (200, {"standby": True})
