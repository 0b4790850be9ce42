"""Writing and pruning children: only objects whose controller reference is ours are updated or deleted.

A child's name is deterministic, so another object may already hold it: a ConfigMap someone made by hand, or a
KServe InferenceService another controller owns. Server-side apply with force would silently take it over, and a
label-only prune would delete it. Here an object with our name but without our controller reference is a
`ChildConflict`: reported on the owner, never adopted, never deleted.

API errors are classified into a `PassFailure` for the kstatus conditions: a missing or too old engine CRD
(KubeRay's RayJob, KServe's InferenceService) is `EngineMissing`, naming the CRD and the version needed.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from llmops_operator.builders import labels
from llmops_operator.controllers.child_cache import ChildCache
from llmops_operator.k8s.client import ApiClient, ApiError, Conflict, NotFound
from llmops_operator.k8s.resources import ApiResource, resource_of
from llmops_operator.status.kstatus import PassFailure

ENGINES: dict[tuple[str, str], tuple[str, str]] = {
    ("ray.io/v1", "RayJob"): ("rayjobs.ray.io", "KubeRay v1.6 or later (ray.io/v1 RayJob with "
                                                "spec.preRunningDeadlineSeconds)"),
    ("serving.kserve.io/v1beta1", "InferenceService"): (
        "inferenceservices.serving.kserve.io", "KServe with serving.kserve.io/v1beta1 (tested with 0.21)"),
    ("serving.kserve.io/v1alpha1", "LLMInferenceService"): (
        "llminferenceservices.serving.kserve.io", "KServe's LLMInferenceService CRD (v0.16 or later; rendered for "
                                                  "v0.20)"),
}
"""Engine CRDs the operator writes: (apiVersion, kind) -> (CRD name, what to install)."""

CREATED_ONCE = ("batch/v1", "Job")
TRANSIENT_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
SCHEMA_TOO_OLD = "field not declared in schema"


class ChildConflict(Exception):
    """A child's name is held by an object this owner does not control."""

    def __init__(self, child: dict[str, Any], holder: dict[str, Any], owner: dict[str, Any]):
        controller = controller_ref(holder)
        held_by = f"{controller['kind']}/{controller['name']}" if controller else "no controller"
        meta = child["metadata"]
        super().__init__(
            f"{child['kind']} {meta.get('namespace') or owner['metadata']['namespace']}/{meta['name']} already "
            f"exists and is not controlled by this {owner['kind']} ({held_by}); the operator neither adopts nor "
            f"deletes it: delete or rename it, or rename this {owner['kind']}")


def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), None)


def controlled_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    """KServe's IsControlledBy: the object's controller reference points at this very owner (by uid)."""
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == owner["metadata"]["uid"]


def owned_by(child: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
    """The child with a controller owner reference to `owner` (children are always in the owner's namespace)."""
    meta = owner["metadata"]
    ref = {
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"], "uid": meta["uid"],
        "controller": True, "blockOwnerDeletion": True,
    }
    child = dict(child)
    child["metadata"] = {**child["metadata"], "namespace": meta.get("namespace"), "ownerReferences": [ref]}
    return child


async def apply_child(api: ApiClient, child: dict[str, Any], owner: dict[str, Any],
                      cache: ChildCache | None = None) -> dict[str, Any] | None:
    """Create or update `child` under `owner`; ChildConflict when its name is held by an object not ours.

    Two kinds of child are never changed once they exist: a `batch/v1` Job (its pod template is immutable, and a
    Job that ran must not run again because the operator renders it differently), and an observe-only child (the
    RayJob of a finished run), which is not created either: None when it does not exist.

    With a `cache` (see child_cache), any other child its watch shows under this owner is written without a GET
    first, and not at all when the manifest and the live object are both as the last apply left them. An
    immutable child (`immutable: true`, named after its content) that the watch does not show is created with one
    POST: the server refuses it when the name is taken, and only then is the holder read and checked."""
    desired = owned_by(child, owner)
    owner_uid = owner["metadata"]["uid"]
    never_rewritten = labels.observe_only(child) or (child["apiVersion"], child["kind"]) == CREATED_ONCE
    seen = cache.seen(desired) if cache is not None and not never_rewritten else None
    if cache is not None and seen is not None and seen.controller_uid == owner_uid:
        live = cache.unchanged(owner_uid, desired, seen)
        if live is not None:
            return live
    else:
        created = await _create_immutable(api, desired) if seen is None and child.get("immutable") is True else None
        if created is not None:
            if cache is not None:
                cache.remember(owner_uid, desired, created)
            return created
        existing = await _existing(api, desired, owner)
        if labels.observe_only(child) or (existing is not None and never_rewritten):
            return existing
    live = await api.apply(desired)
    if cache is not None:
        cache.remember(owner_uid, desired, live)
    return live


async def _create_immutable(api: ApiClient, desired: dict[str, Any]) -> dict[str, Any] | None:
    """Create an immutable child; None when the name is already taken (by us or by someone else)."""
    try:
        return await api.create(desired)
    except Conflict:
        return None


async def _existing(api: ApiClient, desired: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any] | None:
    """The object holding the child's name, if any; ChildConflict when this owner does not control it."""
    meta = desired["metadata"]
    existing = await api.get_or_none(resource_of(desired), meta["namespace"], meta["name"])
    if existing is not None and not controlled_by(existing, owner):
        raise ChildConflict(desired, existing, owner)
    return existing


async def prune_children(api: ApiClient, owner: dict[str, Any], kinds: set[ApiResource], selector: str,
                         wanted: set[tuple[str, str, str]],
                         in_use: Callable[[], Awaitable[set[tuple[str, str, str]]]] | None = None) -> list[str]:
    """Delete the labelled children of `owner` that are not `wanted` (apiVersion, kind, name) and that it
    controls; returns `Kind/name` of each deleted. A kind whose CRD is not installed has nothing to prune.

    `in_use` (what something live still needs, kept as well) is asked only when there is something to prune:
    finding out may cost a LIST, and most passes have nothing to delete."""
    namespace = owner["metadata"]["namespace"]
    doomed = []
    for kind in sorted(kinds, key=lambda k: (k.api_version, k.kind)):
        try:
            found = await api.list(kind, namespace, selector)
        except NotFound as err:
            if err.missing_type:
                continue
            raise
        for child in found:
            meta = child["metadata"]
            key = (child.get("apiVersion", kind.api_version), child.get("kind", kind.kind), meta["name"])
            if key not in wanted and controlled_by(child, owner):
                doomed.append((kind, key, meta.get("uid")))
    kept = await in_use() if doomed and in_use is not None else set()
    removed = []
    for kind, key, uid in doomed:
        if key not in kept:
            await api.delete(kind, namespace, key[2], uid=uid)
            removed.append(f"{key[1]}/{key[2]}")
    return removed


class PassError(Exception):
    """A pass stopped; `failure` says why, in kstatus terms."""

    def __init__(self, failure: PassFailure):
        super().__init__(f"{failure.reason}: {failure.message}")
        self.failure = failure


def classify(err: ApiError | ChildConflict, child: dict[str, Any] | None = None) -> PassFailure:
    """The kstatus reading of an error that stopped a pass (`child`: the manifest being written, if any)."""
    if isinstance(err, ChildConflict):
        return PassFailure("ChildConflict", str(err))
    engine = ENGINES.get((child["apiVersion"], child["kind"])) if child else None
    if engine and isinstance(err, NotFound) and err.missing_type:
        crd, needed = engine
        return PassFailure("EngineMissing", f"the {crd} CRD is not installed: install {needed} ({err.message})")
    if engine and SCHEMA_TOO_OLD in err.message:  # a 422, or a 500 from server-side apply
        crd, needed = engine
        return PassFailure("EngineMissing", f"the installed {crd} CRD is too old: install {needed} ({err.message})")
    verb = f"writing {child['kind']} {child['metadata']['name']}" if child else "calling the API"
    reason = err.reason or f"Http{err.status}"
    return PassFailure(reason, f"{verb}: {err.status} {err.message}".rstrip(),
                       stalled=err.status not in TRANSIENT_STATUSES)
