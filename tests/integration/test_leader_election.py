"""Leader election on a Lease: of two replicas only one leads, a leader that cannot renew stops acting before anyone
else may take over, and the operator process stops when it loses the Lease.

On the real apiserver (when built; the emulator otherwise) the replicas hold the Lease with the chart's credentials
and the chart's leader-election Role (`leaderElection.enabled`), which grants Leases in the release namespace only:
each test takes a Lease of its own name there."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from datetime import datetime, timezone

from apiservers import REAL_WHEN_BUILT, apiserver_kind, kube  # noqa: F401
from llmops_operator.cli.run import LOST_LEADERSHIP, lead_then_operate
from llmops_operator.core.settings import Settings
from llmops_operator.k8s import kubeconfig
from llmops_operator.k8s.client import ApiClient, Conflict
from llmops_operator.k8s.leader import LEASES, Election, LeaderElector, micro_time


APISERVERS = REAL_WHEN_BUILT  # the real apiserver when `make kube` built it, else the emulator
LEADER_ELECTION = {"leaderElection": {"enabled": True}, "replicas": 2}


@pytest.fixture(scope="module")
def lease_rbac(apiserver_kind):
    """On the real apiserver, the RBAC the chart renders with leader election on, removed again after the module
    (the other modules run the chart with its defaults)."""
    if apiserver_kind is None:
        yield None
        return
    from realkube.chart_operator import apply_rbac, rbac_documents

    default = {(d["kind"], d["metadata"]["name"]) for d in rbac_documents()}
    added = [d for d in rbac_documents(LEADER_ELECTION) if (d["kind"], d["metadata"]["name"]) not in default]
    assert added, "the chart renders no leader-election RBAC"
    apply_rbac(apiserver_kind.kube, added)
    yield apiserver_kind.installed.namespace
    from realkube.chart_operator import remove_rbac

    remove_rbac(apiserver_kind.kube, added)


@pytest.fixture
def lease(kube, lease_rbac) -> tuple[str, str]:
    """(namespace, name) of a Lease no one holds yet."""
    if lease_rbac is not None:
        return lease_rbac, f"llmops-operator-{uuid.uuid4().hex[:8]}"
    name = f"lease-{uuid.uuid4().hex[:8]}"
    kube.create_namespace(name)
    return name, "llmops-operator"


def election(lease: tuple[str, str], identity: str) -> Election:
    namespace, name = lease
    return Election(namespace=namespace, name=name, identity=identity, lease_seconds=2.0,
                    renew_seconds=0.3, retry_seconds=0.1)


def test_two_replicas_racing_for_the_lease_never_both_win(lease):
    async def main() -> list[bool]:
        async with ApiClient(kubeconfig.load()) as a, ApiClient(kubeconfig.load()) as b:
            won = []
            for _ in range(5):
                first = LeaderElector(a, election(lease, "replica-a"))
                second = LeaderElector(b, election(lease, "replica-b"))
                won.append(sorted(await asyncio.gather(first.try_acquire_or_renew(),
                                                       second.try_acquire_or_renew())))
            return won
    rounds = asyncio.run(main())
    assert rounds[0] == [False, True], "exactly one replica takes a free Lease"
    assert all(r.count(True) <= 1 for r in rounds)


def test_a_standby_takes_over_only_after_the_leader_stops_renewing(lease):
    async def main() -> tuple[float, str]:
        async with ApiClient(kubeconfig.load()) as api:
            leader = LeaderElector(api, election(lease, "replica-a"))
            standby = LeaderElector(api, election(lease, "replica-b"))
            await leader.acquire()
            holding = asyncio.create_task(leader.hold())
            await asyncio.sleep(1.0)
            assert not await standby.try_acquire_or_renew(), "the standby took a Lease being renewed"
            holding.cancel()  # the leader's renewals stop (a partitioned node)
            stopped = time.monotonic()
            await standby.acquire()
            held = await api.get(LEASES, *lease)
            return time.monotonic() - stopped, held["spec"]["holderIdentity"]
    waited, holder = asyncio.run(main())
    assert holder == "replica-b" and waited >= 1.0


async def steal(api: ApiClient, where: tuple[str, str]) -> float:
    """Another replica takes the Lease (a write that may race the leader's renewals); when it landed."""
    while True:
        lease = await api.get(LEASES, *where)
        lease["spec"].update(holderIdentity="replica-b", renewTime=micro_time(datetime.now(timezone.utc)),
                             leaseDurationSeconds=60)
        try:
            await api.request("PUT", LEASES.path(*where), lease)
            return time.monotonic()
        except Conflict:
            continue


def test_a_leader_that_loses_the_lease_stops_operating(lease):
    """The real operator runs while leading; when another replica holds the Lease, it stops within the duration."""
    settings = Settings(resync_seconds=5)

    async def main() -> tuple[int, float]:
        stop = asyncio.Event()
        me = election(lease, "replica-a")
        running = asyncio.create_task(lead_then_operate(settings, [f"none-{uuid.uuid4().hex[:6]}"], me,
                                                        stop_flag=stop))
        async with ApiClient(kubeconfig.load()) as api:
            for _ in range(100):
                held = await api.get_or_none(LEASES, *lease)
                if held and held["spec"].get("holderIdentity") == "replica-a":
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            assert not running.done(), "the operator stopped while still leading"
            taken = await steal(api, lease)
            code = await asyncio.wait_for(running, 30)
            return code, time.monotonic() - taken
    code, took = asyncio.run(main())
    assert code == LOST_LEADERSHIP and took < 2.0


def test_a_standby_replica_answers_its_liveness_probe_while_it_waits(lease):
    """Kubernetes would restart a standby whose /healthz does not answer; it answers without reconciling."""
    import aiohttp

    from llmops_sandbox.ports import free_port

    port = free_port()

    async def main() -> tuple[int, dict]:
        async with ApiClient(kubeconfig.load()) as api:
            holder = LeaderElector(api, election(lease, "replica-b"))
            assert await holder.try_acquire_or_renew()
            await steal(api, lease)  # held for 60 s by replica-b
            waiting = asyncio.create_task(lead_then_operate(Settings(), ["none"], election(lease, "a"),
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
