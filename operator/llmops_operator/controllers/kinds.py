"""Every kind's reconciler, in one list."""

from __future__ import annotations

from llmops_operator.api.v1alpha1.common import Resource
from llmops_operator.controllers.base import Reconciler
from llmops_operator.controllers.featureview import FeatureViewReconciler
from llmops_operator.controllers.finetune import FineTuneReconciler
from llmops_operator.controllers.guardrail import GuardrailReconciler
from llmops_operator.controllers.inferenceservice import InferenceServiceReconciler
from llmops_operator.controllers.promptrelease import PromptReleaseReconciler
from llmops_operator.controllers.trainingjob import TrainingJobReconciler
from llmops_operator.controllers.vectorindex import VectorIndexReconciler

RECONCILER_CLASSES: tuple[type[Reconciler], ...] = (
    TrainingJobReconciler, FineTuneReconciler, GuardrailReconciler, InferenceServiceReconciler,
    PromptReleaseReconciler, VectorIndexReconciler, FeatureViewReconciler,
)


def all_reconcilers() -> list[Reconciler]:
    return [cls() for cls in RECONCILER_CLASSES]


def reconciler_for(resource: type[Resource]) -> Reconciler:
    return next(cls() for cls in RECONCILER_CLASSES if cls.resource is resource)
