"""Progress reports from a running job into its progress ConfigMap (see builders/progress.py).

Reporting never fails the run: a job that cannot reach the API (a shared RayCluster whose service
account has no rights, a network blip) keeps training and says so in its log.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable

from llmops_operator.k8s.resources import resource_for

CONFIGMAP = resource_for("v1", "ConfigMap")


class Reporter:
    def __init__(self, target: dict[str, str] | None, min_interval: float = 2.0, client: Any = None):
        self.target = target
        self.min_interval = min_interval
        self.state: dict[str, Any] = {}
        self._client = client
        self._last: float | None = None
        """When the last report went out (monotonic); None until the first, which is never throttled."""
        self._disabled = target is None

    def update(self, key: str, value: dict[str, Any], force: bool = False) -> None:
        """Merge `value` into the report's `key` block and send it (at most every min_interval)."""
        self.state[key] = {**self.state.get(key, {}), **value}
        if force or self._last is None or time.monotonic() - self._last >= self.min_interval:
            self.flush()

    def carry_on(self) -> "Reporter":
        """Start from what the ConfigMap already holds, so a second writer (the driver reporting the evaluation
        after the workers reported progress) adds its block instead of replacing theirs."""
        if self._disabled:
            return self
        try:
            body = self.client().get(CONFIGMAP, self.target["namespace"], self.target["configMap"]) or {}
            written = json.loads(((body.get("data") or {}).get(self.target["key"])) or "{}")
        except Exception as err:  # noqa: BLE001 - reporting is best effort by design
            print(f"llmops: reading ConfigMap {self.target['configMap']} failed: {err}", file=sys.stderr, flush=True)
            return self
        if isinstance(written, dict):
            self.state = {**written, **self.state}
        return self

    def flush(self) -> None:
        if self._disabled:
            return
        self.state.setdefault("progress", {})["updatedAt"] = \
            datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"data": {self.target["key"]: json.dumps(self.state, sort_keys=True)}}
        try:
            self.client().patch(CONFIGMAP, self.target["namespace"], self.target["configMap"], patch)
            self._last = time.monotonic()
        except Exception as err:  # noqa: BLE001 - reporting is best effort by design
            print(f"llmops: progress report to ConfigMap {self.target['configMap']} failed, "
                  f"reporting is off for this run: {err}", file=sys.stderr, flush=True)
            self._disabled = True

    def client(self) -> Any:
        if self._client is None:
            from llmops_operator.k8s.blocking import BlockingClient

            self._client = BlockingClient(field_manager="llmops-runtime")
        return self._client


def finish(program: str, work: Callable[[], dict[str, Any]], reporter: Reporter,
           errors: tuple[type[BaseException], ...]) -> int:
    """A job's last step: run its work, print the result as JSON (exit 0), or say why it failed, in the log and
    in the report (exit 1). Errors outside `errors` are bugs and keep their traceback."""
    try:
        result = work()
    except errors as err:
        print(f"{program}: {err}", file=sys.stderr, flush=True)
        reporter.update("progress", {"stage": "Failed", "error": str(err)}, force=True)
        return 1
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0
