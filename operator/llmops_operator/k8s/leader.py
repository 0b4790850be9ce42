"""Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly one reconciles.

A replica acquires the Lease when nobody holds it or the holder stopped renewing it for leaseDurationSeconds;
every write carries the resourceVersion it read, so two replicas racing for one Lease cannot both win. The leader
renews every `renew_seconds`; when it cannot renew before its own lease would expire (API unreachable, another
replica took over) it stops acting at once: the caller ends the operator and the pod restarts as a candidate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp

from llmops_operator.k8s.client import ApiClient, ApiError, Conflict
from llmops_operator.k8s.resources import ApiResource

log = logging.getLogger("llmops.leader")
LEASES = ApiResource("coordination.k8s.io/v1", "Lease", "leases")


@dataclass(frozen=True)
class Election:
    namespace: str
    name: str
    identity: str
    lease_seconds: float = 15.0
    renew_seconds: float = 5.0
    retry_seconds: float = 2.0


def micro_time(moment: datetime) -> str:
    """A Lease's MicroTime: RFC 3339 with microseconds, UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def held_by_other(lease: dict[str, Any], identity: str, now: datetime) -> bool:
    """Whether someone else holds `lease` and renewed it within its duration (pure)."""
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity")
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    if not holder or holder == identity or renewed is None:
        return False
    return (now - renewed).total_seconds() < float(spec.get("leaseDurationSeconds") or 0)


class LeaderElector:
    def __init__(self, api: ApiClient, election: Election):
        self.api = api
        self.election = election
        self.renewed_at: float | None = None
        """time.monotonic() of the last successful acquire or renew."""
        self.other_holder: str | None = None
        """Who held the Lease at the last failed attempt, when it was someone else."""

    def _lease(self, previous: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        spec = (previous or {}).get("spec") or {}
        ours = spec.get("holderIdentity") == self.election.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if ours or previous is None else 1)
        meta: dict[str, Any] = {"name": self.election.name, "namespace": self.election.namespace}
        if previous is not None:
            meta["resourceVersion"] = previous["metadata"]["resourceVersion"]
        return {"apiVersion": LEASES.api_version, "kind": LEASES.kind, "metadata": meta, "spec": {
            "holderIdentity": self.election.identity,
            "leaseDurationSeconds": int(self.election.lease_seconds),
            "acquireTime": spec.get("acquireTime") if ours else micro_time(now),
            "renewTime": micro_time(now),
            "leaseTransitions": transitions,
        }}

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this replica holds the Lease afterwards."""
        ns, name = self.election.namespace, self.election.name
        started, now = time.monotonic(), datetime.now(timezone.utc)
        previous = await self.api.get_or_none(LEASES, ns, name)
        if previous is not None and held_by_other(previous, self.election.identity, now):
            self.other_holder = previous["spec"]["holderIdentity"]
            return False
        try:
            if previous is None:
                await self.api.request("POST", LEASES.path(ns), self._lease(None, now))
            else:
                await self.api.request("PUT", LEASES.path(ns, name), self._lease(previous, now))
        except Conflict:
            return False  # another replica wrote first
        self.renewed_at = started
        return True

    async def acquire(self) -> None:
        """Wait until this replica is the leader."""
        log.info("waiting to lead: Lease %s/%s as %s", self.election.namespace, self.election.name,
                 self.election.identity)
        while not await self._attempt():
            await asyncio.sleep(self.election.retry_seconds)
        log.info("leading: Lease %s/%s", self.election.namespace, self.election.name)

    async def hold(self) -> str:
        """Renew until leadership is lost; returns why. Never returns while this replica still leads."""
        while True:
            await asyncio.sleep(self.election.renew_seconds)
            if await self._attempt():
                continue
            while not self._expired():
                await asyncio.sleep(min(self.election.retry_seconds, self._left()))
                if await self._attempt():
                    break
            else:
                where = f"Lease {self.election.namespace}/{self.election.name}"
                if self.other_holder:
                    return f"{where} is held by {self.other_holder}"
                return f"could not renew {where} within {self.election.lease_seconds:.0f}s"

    async def release(self) -> None:
        """On a clean exit, hand the Lease over at once instead of making the next leader wait it out."""
        ns, name = self.election.namespace, self.election.name
        try:
            lease = await self.api.get_or_none(LEASES, ns, name)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.election.identity:
                lease["spec"]["holderIdentity"] = None
                lease["spec"]["renewTime"] = None
                await self.api.request("PUT", LEASES.path(ns, name), lease)
        except (ApiError, aiohttp.ClientError, asyncio.TimeoutError) as err:
            log.warning("could not release Lease %s/%s: %s", ns, name, err)

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except (ApiError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            log.warning("Lease %s/%s: %s", self.election.namespace, self.election.name, err)
            return False

    def _left(self) -> float:
        """Seconds before our own lease expires, with a margin so we stop before anyone may take over."""
        if self.renewed_at is None:
            return 0.0
        margin = min(self.election.renew_seconds, self.election.lease_seconds / 4)
        return max(self.renewed_at + self.election.lease_seconds - margin - time.monotonic(), 0.0)

    def _expired(self) -> bool:
        return self._left() <= 0
