"""The one place label and annotation keys are defined, and the selectors built from them."""

from __future__ import annotations

from typing import Any, Iterable

from llmops_operator.api.v1alpha1.common import GROUP, Resource

NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"

OPERATOR = "llmops-operator"
KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"

GENERATION = f"{GROUP}/generation"
"""Annotation on children: the owner generation they were built from."""
CONTENT_HASH = f"{GROUP}/content-hash"
"""Label on content-addressed ConfigMaps: the hash of their data."""
OBSERVE_ONLY = f"{GROUP}/observe-only"
"""Annotation on a rendered child the reconcile reads when it exists and never creates or changes
(the RayJob of a finished run: deleting it must not run the training again)."""
RETRAINED_FROM = f"{GROUP}/retrained-from"
"""Label on a FineTune or TrainingJob that drift created: the name of the object whose drift did."""


def owner_label(resource: Resource) -> str:
    """The label key that names a child's owner: llmops.dev/<kind>."""
    return f"{GROUP}/{resource.info.singular}"


def child_labels(resource: Resource, component: str) -> dict[str, str]:
    """Labels every child of `resource` carries."""
    return {
        NAME: resource.info.singular,
        INSTANCE: resource.name,
        COMPONENT: component,
        PART_OF: "llmops",
        MANAGED_BY: OPERATOR,
        owner_label(resource): resource.name,
    }


def child_in_role(live: Iterable[dict[str, Any]], kind: str, component: str) -> dict[str, Any] | None:
    """The child of `kind` labelled with `component` (its role), or None: reducers pick children by what they are,
    never by their position in the list."""
    return next((c for c in live if c.get("kind") == kind
                 and ((c.get("metadata") or {}).get("labels") or {}).get(COMPONENT) == component), None)


def children_selector(resource: Resource) -> str:
    """A label selector matching every child of `resource`."""
    return f"{owner_label(resource)}={resource.name},{MANAGED_BY}={OPERATOR}"


def observe_only(child: dict) -> bool:
    return (child.get("metadata", {}).get("annotations") or {}).get(OBSERVE_ONLY) == "true"
