"""The llmops.dev/v1alpha1 API: one module per kind, shared blocks in common.py."""

from llmops_operator.api.v1alpha1.common import API_VERSION, GROUP, VERSION, Resource
from llmops_operator.api.v1alpha1.featureview import FeatureView
from llmops_operator.api.v1alpha1.finetune import FineTune
from llmops_operator.api.v1alpha1.guardrail import Guardrail
from llmops_operator.api.v1alpha1.inferenceservice import InferenceService
from llmops_operator.api.v1alpha1.promptrelease import PromptRelease
from llmops_operator.api.v1alpha1.trainingjob import TrainingJob
from llmops_operator.api.v1alpha1.vectorindex import VectorIndex

ALL_KINDS: tuple[type[Resource], ...] = (
    TrainingJob, FineTune, Guardrail, InferenceService, PromptRelease, VectorIndex, FeatureView,
)
BY_KIND: dict[str, type[Resource]] = {k.info.kind: k for k in ALL_KINDS}

__all__ = [
    "API_VERSION", "GROUP", "VERSION", "ALL_KINDS", "BY_KIND", "Resource",
    "TrainingJob", "FineTune", "Guardrail", "InferenceService", "PromptRelease", "VectorIndex", "FeatureView",
]
