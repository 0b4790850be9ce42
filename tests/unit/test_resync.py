"""The resync scheduler: when each object's safety-net pass is due, and what a failed pass changes."""

from __future__ import annotations

import asyncio
from typing import Any

from llmops_operator.controllers.resync import Resync


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def body(uid: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "name": uid, "namespace": "ns"}}


def scheduler(outcome: float | None = None) -> tuple[Resync, Clock, list[str]]:
    clock, ran = Clock(), []

    async def run_pass(obj: dict[str, Any]) -> float | None:
        ran.append(obj["metadata"]["uid"])
        return outcome

    return Resync(60, run_pass, clock=clock), clock, ran


def run_due(resync: Resync) -> None:
    async def once() -> None:
        for uid in resync.due():
            resync._running.add(uid)
            await resync._one(uid, resync._objects[uid].body)
    asyncio.run(once())


def test_an_object_is_resynced_once_quiet_for_half_the_interval_then_every_interval():
    resync, clock, ran = scheduler()
    resync.seen(body("a"))
    clock.now += 29
    assert resync.due() == []
    clock.now += 1
    run_due(resync)
    assert ran == ["a"]
    clock.now += 59
    assert resync.due() == []
    clock.now += 1
    assert resync.due() == ["a"]


def test_a_pass_run_by_a_watch_event_puts_the_next_resync_a_whole_interval_later():
    resync, clock, ran = scheduler()
    resync.seen(body("a"))
    resync.passed("a")  # the create handler's pass
    resync.seen(body("a"))  # the status it wrote
    clock.now += 59
    assert resync.due() == []
    clock.now += 1
    run_due(resync)
    assert ran == ["a"]
    resync.passed("gone")  # an object the scheduler never saw: nothing to postpone


def test_a_changing_object_waits_until_it_is_quiet():
    resync, clock, _ = scheduler()
    resync.seen(body("a"))
    clock.now += 25
    resync.seen(body("a"))  # its watch reported a change
    clock.now += 25
    assert resync.due() == []
    clock.now += 5
    assert resync.due() == ["a"]


def test_a_failed_pass_is_retried_after_the_delay_it_asked_for():
    resync, clock, ran = scheduler(outcome=4.0)
    resync.seen(body("a"))
    clock.now += 30
    run_due(resync)
    clock.now += 4
    assert resync.due() == ["a"]


def test_a_deleted_object_is_forgotten():
    resync, clock, _ = scheduler()
    resync.seen(body("a"))
    resync.seen(body("a"), deleted=True)
    clock.now += 600
    assert resync.due() == []


def test_the_running_scheduler_passes_the_latest_body_and_stops_when_cancelled():
    seen: list[dict[str, Any]] = []

    async def run_pass(obj: dict[str, Any]) -> float | None:
        seen.append(obj)
        return None

    async def main() -> None:
        resync = Resync(0.2, run_pass)
        resync.seen(body("a"))
        latest = body("a") | {"spec": {"v": 2}}
        resync.seen(latest)
        task = asyncio.create_task(resync.run())
        await asyncio.sleep(0.5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert seen and seen[0] is latest

    asyncio.run(main())


def test_the_body_kept_for_the_next_pass_drops_managed_fields_and_leaves_the_watched_one_alone():
    resync, clock, _ = scheduler()
    watched = body("a") | {"spec": {"x": 1}}
    watched["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    resync.seen(watched)
    kept = resync._objects["a"].body
    assert "managedFields" not in kept["metadata"] and kept["spec"] == {"x": 1} and kept["metadata"]["name"] == "a"
    assert watched["metadata"]["managedFields"], "the watched body was changed"
