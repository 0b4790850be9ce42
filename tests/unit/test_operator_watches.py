"""What kopf asks the API server to stream: our own kinds whole, child kinds only where they carry our label."""

from __future__ import annotations

import kopf

from llmops_operator.builders import labels
from llmops_operator.controllers.kinds import all_reconcilers
from llmops_operator.controllers.operator import watch_only_our_children

OURS = f"{labels.MANAGED_BY}={labels.OPERATOR}"


def selectors(resource: kopf.Resource) -> list[str]:
    settings = kopf.OperatorSettings()
    watch_only_our_children(settings, all_reconcilers())
    return list(settings.watching.label_selectors.collect(resource))


def test_child_kinds_are_watched_through_our_label_only():
    """A tenant's unrelated ConfigMap (of any size) never reaches the operator's event loop."""
    for group, version, plural in [("", "v1", "configmaps"), ("batch", "v1", "jobs"), ("ray.io", "v1", "rayjobs"),
                                   ("serving.kserve.io", "v1beta1", "inferenceservices")]:
        assert selectors(kopf.Resource(group, version, plural)) == [OURS], plural


def test_our_kinds_and_namespaces_are_watched_whole():
    """Tenants' llmops.dev objects carry no label of ours, and namespace discovery needs every namespace."""
    for group, version, plural in [("llmops.dev", "v1alpha1", "guardrails"),
                                   ("llmops.dev", "v1alpha1", "inferenceservices"), ("", "v1", "namespaces")]:
        assert selectors(kopf.Resource(group, version, plural)) == [], plural
