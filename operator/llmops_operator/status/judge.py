"""Whether a judge InferenceService can judge: the JudgeReady condition of what an evaluation asks it (pure)."""

from __future__ import annotations

from typing import Any

from llmops_operator.core import conditions as cond

JUDGE_READY = "JudgeReady"


def judge_readiness(name: str, service: dict[str, Any] | None, field: str) -> tuple[str | None, cond.Observed]:
    """The judge's URL and JudgeReady from its InferenceService body (None: absent); the URL is None, and the
    condition False saying why, until the service is Ready with a URL. `field` names the reference in messages."""
    if service is None:
        return None, cond.false(JUDGE_READY, "InferenceServiceNotFound",
                                f"{field}: InferenceService {name!r} does not exist in this namespace")
    status = service.get("status") or {}
    if not cond.is_ready(status) or not status.get("url"):
        return None, cond.false(JUDGE_READY, "InferenceServiceNotReady",
                                f"waiting for the judge InferenceService {name!r} to be Ready with a URL")
    return status["url"], cond.true(JUDGE_READY, "Serving",
                                    f"the evaluation asks InferenceService {name!r} at {status['url']}")
