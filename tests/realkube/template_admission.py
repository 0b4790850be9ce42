"""Every pod template the operator writes while a suite runs (Jobs, CronJobs, RayJobs, KServe InferenceServices),
created as a dry-run Pod in its own namespace, through the real admission chain, in every namespace that enforces
PodSecurity `restricted`. There is no kubelet and the stand-ins run the work as local processes, so this is where
the operator's pods meet PodSecurity.

A poller checks each child once per generation while the suite runs; `sweep()` checks what is new at once (a test's
end). A refusal is kept unless the child or its namespace went away meanwhile (a dry run in a terminating namespace
is refused for that alone)."""

from __future__ import annotations

import logging
import threading
import urllib.error
from typing import Any

from llmops_operator.k8s.blocking import BlockingClient
from llmops_operator.k8s.resources import ApiResource, resource_for

from realkube.pod_admission import dry_run_pod, pod_templates

CHILD_KINDS = [resource_for("batch/v1", "Job"), resource_for("batch/v1", "CronJob"),
               resource_for("ray.io/v1", "RayJob"), resource_for("serving.kserve.io/v1beta1", "InferenceService")]
NAMESPACES = resource_for("v1", "Namespace")
RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"
MISSING_ACCOUNT_RETRIES = 30
"""Sweeps a template may name a ServiceAccount the operator has not written yet before that counts as a refusal."""
CONTROL = {"spec": {"containers": [{"name": "control", "image": "control"}]}}
"""A pod with no security context: a namespace that admits it does not enforce `restricted`."""

log = logging.getLogger(__name__)


class TemplateAdmission:
    def __init__(self, client: BlockingClient, interval: float = 2.0):
        self.client = client
        self.interval = interval
        self.refused: list[str] = []
        self.checked = 0
        """Pod templates dry-run so far."""
        self._seen: set[tuple[str, int]] = set()
        self.namespaces: set[str] = set()
        """The restricted namespaces seen (each checked with a control pod that must be refused)."""
        self._missing_account: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="template-admission", daemon=True)

    def start(self) -> "TemplateAdmission":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(60)
        self.sweep()

    def _poll(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.sweep()
            except (OSError, urllib.error.HTTPError) as err:  # a busy apiserver: the next sweep sees the same
                log.info("template admission sweep failed, retrying: %s", err)

    def sweep(self) -> None:
        with self._lock:
            restricted = {ns["metadata"]["name"] for ns in self.client.list(NAMESPACES, None, RESTRICTED)
                          if not ns["metadata"].get("deletionTimestamp")}
            for namespace in sorted(restricted - self.namespaces):
                self._control(namespace)
            for where in CHILD_KINDS:
                for child in self._children(where):
                    if child["metadata"]["namespace"] in restricted:
                        self._check(where, {**child, "apiVersion": where.api_version, "kind": where.kind})

    def _control(self, namespace: str) -> None:
        self.namespaces.add(namespace)
        message = dry_run_pod(self.client, namespace, "restricted-control", CONTROL) or ""
        if "violates PodSecurity" not in message and "being terminated" not in message:
            self.refused.append(f"namespace {namespace} admits a pod without a security context: {message!r}")

    def _children(self, where: ApiResource) -> list[dict[str, Any]]:
        try:
            return self.client.list(where)
        except urllib.error.HTTPError as err:
            if err.code == 404:  # that engine's CRD is not installed
                return []
            raise

    def _check(self, where: ApiResource, child: dict[str, Any]) -> None:
        meta = child["metadata"]
        key = (meta["uid"], meta.get("generation", 0))
        if key in self._seen or meta.get("deletionTimestamp"):
            return
        self._seen.add(key)
        for path, template in pod_templates(child):
            self.checked += 1
            message = dry_run_pod(self.client, meta["namespace"], f"{where.kind.lower()}-{meta['name']}", template)
            if message is None or not self._still_there(where, meta):
                continue
            if "serviceaccount" in message.lower() and "not found" in message.lower():
                tries = self._missing_account[key] = self._missing_account.get(key, 0) + 1
                if tries < MISSING_ACCOUNT_RETRIES:
                    self._seen.discard(key)  # written before its ServiceAccount: look again next sweep
                    continue
            self.refused.append(f"{where.kind} {meta['namespace']}/{meta['name']} {path}: {message}")

    def _still_there(self, where: ApiResource, meta: dict[str, Any]) -> bool:
        namespace = self.client.get(NAMESPACES, None, meta["namespace"])
        if namespace is None or namespace["metadata"].get("deletionTimestamp"):
            return False
        child = self.client.get(where, meta["namespace"], meta["name"])
        return child is not None and child["metadata"]["uid"] == meta["uid"]
