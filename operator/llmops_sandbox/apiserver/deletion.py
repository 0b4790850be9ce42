"""Deletion as the API server and its controllers do it: preconditions, finalizers, background garbage
collection of dependents, and namespaces that terminate once they are empty. A part of `core.Cluster`.

As in a cluster, the garbage collector and the namespace controller act after the request that triggers them has
been answered: on the next turn of the server's event loop (kube-controller-manager takes about half a second,
several for a namespace). Clients that need the effect wait for it, as they must against a real server."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from typing import TYPE_CHECKING, Any, Callable

from . import errors
from .errors import ApiError
from .registry import Resource

if TYPE_CHECKING:
    from .registry import Registry
    from .store import Store

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NS_KEY = ("", "namespaces")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def later(action: Callable[..., Any], *args: Any) -> None:
    """Run `action` after the current request, or now when no server loop is running (set-up code)."""
    try:
        asyncio.get_running_loop().call_soon(action, *args)
    except RuntimeError:
        action(*args)


class Deletion:
    """Deletion for `Cluster`, which provides the store, the registry, `view` and `_unregister`."""

    store: "Store"
    registry: "Registry"
    applied: dict[tuple, dict[str, Any]]

    def delete(self, res: Resource, ns: str | None, name: str, propagation: str | None = None,
               preconditions: dict[str, Any] | None = None, dry_run: bool = False) -> dict[str, Any]:
        ns = ns if res.namespaced else None
        old = self.store.get(res.key, ns, name)
        if old is None:
            raise errors.not_found(res.group, res.plural, name)
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
            raise errors.conflict(res.group, res.plural, name, "Precondition failed: UID in precondition: "
                                  f"{pre['uid']}, UID in object meta: {old['metadata']['uid']}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise errors.conflict(res.group, res.plural, name, "Precondition failed: ResourceVersion in "
                                  f"precondition: {pre['resourceVersion']}, ResourceVersion in object meta: "
                                  f"{old['metadata']['resourceVersion']}")
        if dry_run:
            return self.view(res, old)
        if res.key == NS_KEY:
            return self.view(res, self._delete_namespace(old))
        if old["metadata"].get("finalizers"):
            if old["metadata"].get("deletionTimestamp"):
                return self.view(res, old)
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            return self.view(res, self.store.put(res.key, new, "MODIFIED"))
        gone = self._remove(res, ns, name, orphan=(propagation == "Orphan"))
        return self.view(res, gone)

    def _remove(self, res: Resource, ns: str | None, name: str, orphan: bool = False) -> dict[str, Any] | None:
        gone = self.store.remove(res.key, ns, name)
        if gone is None:
            return None
        for key in [k for k in self.applied if k[0] == res.key and k[1] == ns and k[2] == name]:
            del self.applied[key]
        if res.key == CRD_KEY:
            self._unregister(gone)
        later(self._orphan if orphan else self._collect, gone)
        if ns:
            self._maybe_finish_namespace(ns)
        return gone

    def _resource_for_key(self, key: tuple[str, str]) -> Resource | None:
        group, plural = key
        versions = self.registry.versions_of(group, plural)
        return versions[0] if versions else None

    def _collect(self, owner: dict[str, Any]) -> None:
        """Background garbage collection of the dependents of a removed owner."""
        uid = owner["metadata"]["uid"]
        live_uids = None
        for key, obj in self._dependents(owner):
            others = [r.get("uid") for r in obj["metadata"]["ownerReferences"] if r.get("uid") != uid]
            if others:
                if live_uids is None:
                    live_uids = {o["metadata"]["uid"] for _, o in self.store.everything()}
                if any(u in live_uids for u in others):
                    continue
            res = self._resource_for_key(key)
            if res is None:
                continue
            try:
                self.delete(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
            except ApiError:
                pass

    def _orphan(self, owner: dict[str, Any]) -> None:
        """Orphan propagation: dependents stay, without their reference to the owner."""
        uid = owner["metadata"]["uid"]
        for key, obj in self._dependents(owner):
            new = copy.deepcopy(obj)
            refs = [r for r in new["metadata"]["ownerReferences"] if r.get("uid") != uid]
            if refs:
                new["metadata"]["ownerReferences"] = refs
            else:
                del new["metadata"]["ownerReferences"]
            self.store.put(key, new, "MODIFIED")

    def _dependents(self, owner: dict[str, Any]) -> list[tuple[tuple[str, str], dict[str, Any]]]:
        uid = owner["metadata"]["uid"]
        owner_ns = owner["metadata"].get("namespace")
        return [(key, obj) for key, obj in list(self.store.everything())
                if any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])
                and not (owner_ns and obj["metadata"].get("namespace") != owner_ns)]

    # -- namespaces ------------------------------------------------------------------------------
    def _delete_namespace(self, ns_obj: dict[str, Any]) -> dict[str, Any]:
        if not ns_obj["metadata"].get("deletionTimestamp"):
            new = copy.deepcopy(ns_obj)
            new["metadata"]["deletionTimestamp"] = now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["status"] = {"phase": "Terminating"}
            ns_obj = self.store.put(NS_KEY, new, "MODIFIED")
        later(self._empty_namespace, ns_obj["metadata"]["name"])
        return ns_obj

    def _empty_namespace(self, name: str) -> None:
        for key, obj in list(self.store.all_in_namespace(name)):
            res = self._resource_for_key(key)
            if res is not None and self.store.get(key, name, obj["metadata"]["name"]) is not None:
                try:
                    self.delete(res, name, obj["metadata"]["name"])
                except ApiError:
                    pass
        self._maybe_finish_namespace(name)

    def _maybe_finish_namespace(self, name: str) -> None:
        ns_obj = self.store.get(NS_KEY, None, name)
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        if next(iter(self.store.all_in_namespace(name)), None) is not None:
            return
        if ns_obj["metadata"].get("finalizers"):
            return
        self.store.remove(NS_KEY, None, name)
