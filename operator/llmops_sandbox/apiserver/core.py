"""The semantics of writes: metadata, admission (schema, CEL, pruning), status isolation, finalizers,
garbage collection, namespaces and CRD registration. Runs on the server's event loop, synchronously."""

from __future__ import annotations

import copy
import json
import logging
import random
import uuid
from typing import Any

from . import builtins, errors, patch as patches
from .cel import MISSING, CelValidator
from .deletion import CRD_KEY, NS_KEY, Deletion, now
from .errors import ApiError
from .registry import Registry, Resource
from .schema import prune, validate
from .store import Store

log = logging.getLogger(__name__)

_ALNUM = "bcdfghjklmnpqrstvwxz2456789"
STATUS_BUILTINS = {("", "namespaces"), ("", "pods"), ("batch", "jobs"), ("apps", "deployments"),
                   ("", "services"), ("batch", "cronjobs"), ("apiextensions.k8s.io", "customresourcedefinitions")}


NS_NAME_LABEL = "kubernetes.io/metadata.name"
# Schema errors after which the real server does not evaluate CEL rules, and the cause it adds instead.
BLOCKING = ("FieldValueTypeInvalid", "FieldValueNotSupported")
RULES_NOT_CHECKED = {"reason": "FieldValueInvalid", "field": "<nil>",
                     "message": "Invalid value: null: some validation rules were not checked because the object "
                                "was invalid; correct the existing errors to complete validation"}


def has_status(res: Resource) -> bool:
    return res.status_subresource or (res.crd is None and res.key in STATUS_BUILTINS)


def _has_rules(schema: Any) -> bool:
    if isinstance(schema, dict):
        return "x-kubernetes-validations" in schema or any(_has_rules(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_rules(v) for v in schema)
    return False


class Cluster(Deletion):
    def __init__(self, history: int = 1000) -> None:
        self.registry = Registry()
        self.store = Store(history)
        self.cel = CelValidator()
        self.applied: dict[tuple, dict[str, Any]] = {}  # (key, ns, name, manager) → last applied config
        self.field_validation = ""  # the current request's fieldValidation (Strict fails on unknown fields)

    # -- views -----------------------------------------------------------------------------------
    @staticmethod
    def view(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        """The stored object as the requested version shows it (no conversion: apiVersion only)."""
        if obj.get("apiVersion") == res.api_version:
            return obj
        out = dict(obj)
        out["apiVersion"] = res.api_version
        return out

    def get(self, res: Resource, ns: str | None, name: str) -> dict[str, Any]:
        obj = self.store.get(res.key, ns if res.namespaced else None, name)
        if obj is None:
            raise errors.not_found(res.group, res.plural, name)
        return self.view(res, obj)

    def require_namespace(self, res: Resource, ns: str | None, creating: bool = False) -> None:
        if not res.namespaced:
            return
        if not ns:
            raise ApiError(400, "the server could not find the requested resource: a namespace is required")
        namespace = self.store.get(NS_KEY, None, ns)
        if namespace is None:
            raise errors.not_found("", "namespaces", ns)
        if creating and namespace["metadata"].get("deletionTimestamp"):
            raise ApiError(403, f"{res.plural} \"\" is forbidden: unable to create new content in namespace "
                                f"{ns} because it is being terminated", "Forbidden")

    # -- admission -------------------------------------------------------------------------------
    def _shape(self, res: Resource, ns: str | None, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request must be a JSON object")
        obj = copy.deepcopy(body)
        kind = obj.get("kind")
        for field in ("kind", "apiVersion"):
            if res.crd is not None and not obj.get(field):
                # Built-in endpoints default the type from the URL; custom resources are decoded without one.
                raise ApiError(400, f"the object provided is unrecognized (must be of type {res.kind}): Object "
                                    f"'{field[0].upper() + field[1:]}' is missing in '{json.dumps(body)[:200]}'")
        if kind and kind != res.kind:
            raise ApiError(400, f"the kind of the object ({kind}) does not match the resource ({res.kind})")
        obj["kind"] = res.kind
        obj["apiVersion"] = res.api_version
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be an object")
        if res.namespaced:
            if meta.get("namespace") and ns and meta["namespace"] != ns:
                raise ApiError(400, "the namespace of the provided object does not match the namespace sent "
                                    "on the request")
            meta["namespace"] = ns or meta.get("namespace")
        else:
            meta.pop("namespace", None)
        return obj

    def _admit(self, res: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        name = obj["metadata"].get("name", "")
        causes = []
        if res.schema is not None:
            removed: list[str] = []
            prune(obj, res.schema, root=True, removed=removed)
            if removed and self.field_validation == "Strict":
                raise ApiError(400, f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
                                    "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in removed))
            causes = validate(obj, res.schema, root=True)
            if _has_rules(res.schema):
                if any(c["reason"] in BLOCKING for c in causes):
                    causes.append(dict(RULES_NOT_CHECKED))
                else:
                    causes += self.cel.validate(obj, res.schema, old if old is not None else MISSING)
        elif res.key == CRD_KEY:
            causes = builtins.validate_crd(obj)
        else:
            causes = builtins.validate(res.key, obj)
        if causes:
            raise errors.invalid(res.kind, res.group, name, causes)
        return obj

    # -- create ----------------------------------------------------------------------------------
    def create(self, res: Resource, ns: str | None, body: Any, dry_run: bool = False) -> dict[str, Any]:
        obj = self._shape(res, ns, body)
        meta = obj["metadata"]
        ns = meta.get("namespace") if res.namespaced else None
        self.require_namespace(res, ns, creating=True)
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(random.choice(_ALNUM) for _ in range(5))
            else:
                raise errors.invalid(res.kind, res.group, "", [
                    {"reason": "FieldValueRequired", "field": "metadata.name",
                     "message": "Required value: name or generateName is required"}])
        if self.store.get(res.key, ns, meta["name"]) is not None:
            raise errors.already_exists(res.group, res.plural, meta["name"])
        if meta.get("resourceVersion"):
            raise ApiError(400, "resourceVersion should not be set on objects to be created")
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if builtins.has_generation(res.key, res.crd is not None):
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        for transient in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"):
            meta.pop(transient, None)
        if res.status_subresource:
            obj.pop("status", None)
        if res.key == NS_KEY:
            obj["status"] = {"phase": "Active"}
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            meta.setdefault("labels", {})[NS_NAME_LABEL] = meta["name"]
        self._admit(res, obj, None)
        if res.key == CRD_KEY:
            obj["status"] = builtins.crd_status(obj, now())
        if dry_run:
            meta["resourceVersion"] = str(self.store.rv)
            return self.view(res, obj)
        stored = self.store.put(res.key, obj, "ADDED")
        if res.key == CRD_KEY:
            self._register(stored)
        return self.view(res, stored)

    # -- update ----------------------------------------------------------------------------------
    def update(self, res: Resource, ns: str | None, name: str, body: Any, subresource: str | None = None,
               dry_run: bool = False, allow_create: bool = True) -> tuple[dict[str, Any], bool]:
        """PUT. Returns (object, created)."""
        ns = ns if res.namespaced else None
        obj = self._shape(res, ns, body)
        if obj["metadata"].get("name") and obj["metadata"]["name"] != name:
            raise ApiError(400, "the name of the object does not match the name on the URL")
        obj["metadata"]["name"] = name
        self.require_namespace(res, ns)
        old = self.store.get(res.key, ns, name)
        if old is None:
            if subresource or not allow_create:
                raise errors.not_found(res.group, res.plural, name)
            obj["metadata"].pop("resourceVersion", None)
            return self.create(res, ns, obj, dry_run), True
        rv = obj["metadata"].get("resourceVersion")
        if not rv and res.crd is not None:
            raise ApiError(422, f'{res.plural}.{res.group} "{name}" is invalid: metadata.resourceVersion: Invalid '
                                "value: 0: must be specified for an update", "Invalid",
                           {"name": name, "group": res.group, "kind": res.plural, "causes": [
                               {"reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
                                "message": "Invalid value: 0: must be specified for an update"}]})
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(res.group, res.plural, name,
                                  "the object has been modified; please apply your changes to the latest "
                                  "version and try again")
        return self._write(res, old, obj, subresource, dry_run), False

    def _write(self, res: Resource, old: dict[str, Any], new: dict[str, Any], subresource: str | None,
               dry_run: bool) -> dict[str, Any]:
        """Carry immutable metadata over, isolate status, admit, bump generation, store."""
        old_meta = old["metadata"]
        if subresource == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
        else:
            meta = new["metadata"]
            for keep in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                         "namespace", "name"):
                if keep in old_meta:
                    meta[keep] = old_meta[keep]
                else:
                    meta.pop(keep, None)
            meta.pop("managedFields", None)
            if has_status(res):
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            if res.key == NS_KEY:
                new["status"] = copy.deepcopy(old.get("status", {"phase": "Active"}))
        new["apiVersion"] = res.api_version
        new["kind"] = res.kind
        tracked = builtins.has_generation(res.key, res.crd is not None)
        if tracked:
            new["metadata"]["generation"] = old_meta.get("generation", 1)
        else:
            new["metadata"].pop("generation", None)
        if res.key == NS_KEY:
            new["metadata"].setdefault("labels", {})[NS_NAME_LABEL] = old_meta["name"]
        self._admit(res, new, old)
        ignored = {"metadata", "status"} if has_status(res) else {"metadata"}
        if tracked and {k: v for k, v in new.items() if k not in ignored | {"apiVersion"}} != \
                {k: v for k, v in old.items() if k not in ignored | {"apiVersion"}}:
            new["metadata"]["generation"] = old_meta.get("generation", 1) + 1
        if res.key == CRD_KEY:
            new["status"] = builtins.crd_status(new, now(), old.get("status"))
        if dry_run:
            new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
            return self.view(res, new)
        if self._same(old, new):
            return self.view(res, old)  # a no-op write keeps the resourceVersion
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            # The write that removes the last finalizer of a deleting object deletes it (one DELETED event).
            self.store.objects[res.key][(old_meta.get("namespace"), old_meta["name"])] = new
            gone = self._remove(res, old_meta.get("namespace"), old_meta["name"])
            return self.view(res, gone or new)
        stored = self.store.put(res.key, new, "MODIFIED")
        if res.key == CRD_KEY:
            self._register(stored)
        return self.view(res, stored)

    @staticmethod
    def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
        a = dict(old, metadata={k: v for k, v in old["metadata"].items() if k != "resourceVersion"})
        b = dict(new, metadata={k: v for k, v in new["metadata"].items() if k != "resourceVersion"})
        a.pop("apiVersion", None)
        b.pop("apiVersion", None)
        return a == b

    # -- patch -----------------------------------------------------------------------------------
    def patch(self, res: Resource, ns: str | None, name: str, content_type: str, body: Any,
              subresource: str | None = None, field_manager: str | None = None, force: bool = False,
              dry_run: bool = False) -> tuple[dict[str, Any], bool]:
        ns = ns if res.namespaced else None
        self.require_namespace(res, ns)
        old = self.store.get(res.key, ns, name)
        if content_type == patches.APPLY:
            if not field_manager:
                raise errors.invalid("PatchOptions", "meta.k8s.io", "", [
                    {"reason": "FieldValueRequired", "field": "fieldManager",
                     "message": "Required value: is required for apply patch"}])
            if not isinstance(body, dict):
                raise ApiError(400, "apply patch must be an object")
            body_meta = body.get("metadata") or {}
            if body_meta.get("name") and body_meta["name"] != name:
                raise ApiError(400, "the name of the object does not match the name on the URL")
            key = (res.key, ns, name, field_manager, subresource)
            if old is None:
                if subresource:
                    raise errors.not_found(res.group, res.plural, name)
                created = self.create(res, ns, dict(body, metadata=dict(body_meta, name=name)), dry_run)
                if not dry_run:
                    self.applied[key] = copy.deepcopy(body)
                return created, True
            result = patches.server_side_apply(old, body, self.applied.get(key))
            if not dry_run:
                self.applied[key] = copy.deepcopy(body)
        else:
            if old is None:
                raise errors.not_found(res.group, res.plural, name)
            current = self.view(res, old)
            if content_type == patches.MERGE:
                result = patches.merge_patch(current, body)
            elif content_type == patches.JSON:
                result = patches.json_patch(current, body)
            elif content_type == patches.STRATEGIC and res.crd is None:
                result = patches.strategic_merge(current, body)
            else:
                raise ApiError(415, "the body of the request was in an unknown format - accepted media types "
                                    f"include: {patches.JSON}, {patches.MERGE}, {patches.APPLY}",
                               "UnsupportedMediaType")
        if not isinstance(result, dict):
            raise ApiError(422, "the patch produced something other than an object", "Invalid")
        meta = result.setdefault("metadata", {}) if isinstance(result.get("metadata"), dict) else None
        if meta is None:
            raise ApiError(422, "metadata must be an object", "Invalid")
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(res.group, res.plural, name,
                                  "the object has been modified; please apply your changes to the latest "
                                  "version and try again")
        if meta.get("name", name) != name:
            raise ApiError(400, "the name of the object may not be changed by a patch")
        shaped = self._shape(res, ns, dict(result, kind=res.kind))
        return self._write(res, old, shaped, subresource, dry_run), False

    # -- CRDs ------------------------------------------------------------------------------------
    def _register(self, crd: dict[str, Any]) -> None:
        self.registry.register_crd(crd)

    def _unregister(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec", {})
        self.registry.unregister_crd(crd["metadata"]["name"])
        key = (spec.get("group", ""), spec.get("names", {}).get("plural", ""))
        for gone in self.store.drop_key(key):
            self.applied = {k: v for k, v in self.applied.items() if k[0] != key}
            ns = gone["metadata"].get("namespace")
            if ns:
                self._maybe_finish_namespace(ns)
