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


def test_a_pass_failed_on_a_watch_event_is_retried_after_its_delay_however_recent_the_change():
    """A failed pass writes why to status, and that write is a watch event: the retry must not wait until the
    object is quiet (half an interval), nor come before its delay."""
    resync, clock, ran = scheduler()
    resync.seen(body("a"))
    resync.retry("a", 2.0)
    resync.seen(body("a"))  # the failure's status write
    clock.now += 1.9
    assert resync.due() == []
    clock.now += 0.1
    run_due(resync)
    assert ran == ["a"]
    clock.now += 2
    assert resync.due() == []  # the retry succeeded: back to the interval
    resync.retry("gone", 2.0)  # an object the scheduler never saw: nothing to retry


def test_a_retry_that_fails_again_is_retried_after_its_own_delay():
    resync, clock, ran = scheduler(outcome=8.0)
    resync.seen(body("a"))
    resync.retry("a", 2.0)
    clock.now += 2
    run_due(resync)
    resync.seen(body("a"))
    clock.now += 7.9
    assert resync.due() == []
    clock.now += 0.1
    assert resync.due() == ["a"]


def test_a_pass_that_succeeded_cancels_the_retry():
    resync, clock, _ = scheduler()
    resync.seen(body("a"))
    resync.retry("a", 2.0)
    resync.passed("a")  # a later watch event's pass succeeded first
    clock.now += 2
    assert resync.due() == []
