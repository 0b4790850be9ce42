"""Every pod template the operator renders passes Pod Security `restricted`; the token only where the API is called."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from llmops_operator.cli.render import render_paths
from pod_security_rules import restricted_violations

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"


def pod_specs(child: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, PodSpec) of every pod `child` makes; a KServe component inlines its PodSpec (the predictor's
    container is `model`)."""
    kind, spec, name = child["kind"], child.get("spec") or {}, child["metadata"]["name"]
    if kind == "RayJob":
        cluster = spec.get("rayClusterSpec") or {}
        if cluster:
            yield f"{name} head", cluster["headGroupSpec"]["template"]["spec"]
            for group in cluster["workerGroupSpecs"]:
                yield f"{name} {group['groupName']}", group["template"]["spec"]
        yield f"{name} submitter", spec["submitterPodTemplate"]["spec"]
    elif kind == "Job":
        yield name, spec["template"]["spec"]
    elif kind == "CronJob":
        yield name, spec["jobTemplate"]["spec"]["template"]["spec"]
    elif kind == "InferenceService":
        predictor = dict(spec["predictor"])
        model = predictor.pop("model")
        yield f"{name} predictor", {**predictor, "containers": [model, *predictor.get("containers", [])]}
        if "transformer" in spec:
            yield f"{name} transformer", spec["transformer"]


def count_containers_lists(value: Any) -> int:
    if isinstance(value, dict):
        return ("containers" in value) + sum(count_containers_lists(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_containers_lists(v) for v in value)
    return 0


def rendered_pods() -> list[tuple[str, dict[str, Any]]]:
    children = render_paths([EXAMPLES])
    pods = [pod for child in children for pod in pod_specs(child)]
    # every pod template in the output is one the walk above knows (the predictor has `model`, not `containers`)
    predictors = sum(1 for c in children if c["kind"] == "InferenceService")
    assert count_containers_lists(children) == len(pods) - predictors
    return pods


def test_every_example_renders_pods_of_every_kind():
    where = " ".join(w for w, _ in rendered_pods())
    for part in ("head", "workers", "submitter", "ingest", "apply", "materialize", "predictor", "transformer"):
        assert part in where, part


@pytest.mark.parametrize("where,pod", rendered_pods(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_rendered_pod_passes_restricted(where, pod):
    assert restricted_violations(pod) == []


@pytest.mark.parametrize("where,pod", rendered_pods(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_token_is_mounted_only_where_the_pod_reports_to_the_api(where, pod):
    reports = pod.get("serviceAccountName", "").endswith("-reporter")
    assert pod["automountServiceAccountToken"] is reports
    assert not ("submitter" in where or "predictor" in where or "transformer" in where) or not reports


def test_the_checker_refuses_what_restricted_refuses():
    open_pod = {"hostNetwork": True, "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
                "containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}],
                                "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}}]}
    problems = " | ".join(restricted_violations(open_pod))
    for expected in ("hostNetwork", "hostPath", "privileged", "allowPrivilegeEscalation", "drop ALL",
                     "NET_BIND_SERVICE", "runAsNonRoot", "seccompProfile", "hostPort"):
        assert expected in problems
