"""spec.retrain and status.retrain: drift-triggered continuous training, shared by every kind that reports drift.

Opt-in: without spec.retrain nothing is created. With it, a drifted object creates a FineTune or
TrainingJob from a template ConfigMap, at most maxRuns times and never twice within the cooldown.
"""

from __future__ import annotations

from pydantic import Field

from llmops_operator.api.v1alpha1.common import KubeModel, StatusModel
from llmops_operator.api.v1alpha1.units import Duration

TEMPLATE_KEY = "manifest.yaml"
"""The key of the template ConfigMap that holds the run's manifest."""


class RetrainSpec(KubeModel):
    """Create a training run when drift is detected: the closed loop from monitoring back to training."""

    template: str = Field(min_length=1, max_length=253)
    """Name of a ConfigMap in the same namespace whose key manifest.yaml holds a FineTune or TrainingJob manifest
    without metadata.name; each run is created from it with generateName <name>-retrain-."""
    cooldown: Duration = "24h"
    """Least time between two runs. Defaults to 24h."""
    max_runs: int = Field(default=3, ge=1, le=100)
    """How many runs drift may create in all; raise it to allow more. Defaults to 3."""


class RetrainStatus(StatusModel):
    """The runs drift has created."""

    runs: int = 0
    """How many runs drift has created."""
    last_run: str | None = None
    """Name of the last run created."""
    last_run_kind: str | None = None
    """Kind of the last run created: FineTune or TrainingJob."""
    last_triggered: str | None = None
    """When the last run was created (RFC 3339)."""
