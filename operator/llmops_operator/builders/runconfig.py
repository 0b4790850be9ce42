"""The run config a training runtime reads: everything it needs, as one JSON document (pure).

The operator hands it to the Ray job as the LLMOPS_RUN_CONFIG environment variable of the
job's runtime environment, so the same document reaches the driver and every worker whether the
job gets its own RayCluster or is submitted to an existing one.
"""

from __future__ import annotations

from typing import Any

from llmops_operator.api.v1alpha1.finetune import DpoSpec, FineTune
from llmops_operator.api.v1alpha1.training import RetrySpec
from llmops_operator.api.v1alpha1.trainingjob import TrainingJob
from llmops_operator.api.v1alpha1.units import parse_duration
from llmops_operator.builders.deepspeed import deepspeed_config
from llmops_operator.builders.progress import progress_target

RUN_CONFIG_ENV = "LLMOPS_RUN_CONFIG"
RUN_CONFIG_VERSION = 1


def _dump(model: Any) -> Any:
    return None if model is None else model.wire()


def _common(obj: TrainingJob | FineTune) -> dict[str, Any]:
    spec = obj.spec
    return {
        "version": RUN_CONFIG_VERSION,
        "owner": {"kind": obj.kind, "namespace": obj.namespace, "name": obj.name},
        "workers": spec.resources.workers,
        "gpusPerWorker": spec.resources.gpus_per_worker,
        "training": _dump(spec.training),
        "deepspeed": deepspeed_config(spec),
        "dataset": _dump(spec.dataset),
        "checkpoint": _dump(spec.checkpoint),
        "progress": progress_target(obj),
        "retries": _retries(spec.retries),
    }


def _retries(retries: RetrySpec | None) -> dict[str, Any] | None:
    if retries is None or retries.limit == 0:
        return None
    return {"limit": retries.limit, "backoffSeconds": parse_duration(retries.backoff),
            "maxBackoffSeconds": parse_duration(retries.max_backoff)}


def output_uri(obj: TrainingJob | FineTune) -> str | None:
    """Where the final model goes: the explicit output, else <checkpoint.uri>/final."""
    explicit = obj.spec.output_uri if isinstance(obj, TrainingJob) else obj.spec.output.uri
    if explicit:
        return explicit
    return f"{obj.spec.checkpoint.uri.rstrip('/')}/final" if obj.spec.checkpoint else None


def feature_service_dataset(job: TrainingJob, repository: dict[str, str]) -> dict[str, Any]:
    """dataset for a feature service: the spec's block plus the FeatureView's Feast repository files.

    `repository` is what the FeatureView's own Jobs mount (builders/feast.repo_files), so the runtime
    opens the same registry and offline store. textField stays only when the spec sets it: unset,
    the runtime writes each row's features as text instead of reading one column."""
    dataset = _dump(job.spec.dataset)
    if "text_field" not in job.spec.dataset.model_fields_set:
        dataset.pop("textField", None)
    dataset["featureService"]["repository"] = dict(repository)
    return dataset


def training_run_config(job: TrainingJob, feast_repository: dict[str, str] | None = None) -> dict[str, Any]:
    """`feast_repository`: the referenced FeatureView's repository files, resolved by the caller; required
    when the dataset is a feature service."""
    config = {**_common(job), "task": "pretrain", "model": _dump(job.spec.model), "outputUri": output_uri(job)}
    if job.spec.dataset.feature_service:
        if feast_repository is None:
            raise ValueError("dataset.featureService: the FeatureView's Feast repository was not resolved")
        config["dataset"] = feature_service_dataset(job, feast_repository)
    return config


def finetune_run_config(ft: FineTune, base_model_uri: str, guardrail_policy: dict[str, Any] | None = None,
                        judge_url: str | None = None) -> dict[str, Any]:
    """`base_model_uri`, the evaluation's compiled `guardrail_policy` and the judge InferenceService's `judge_url`
    are resolved by the caller.

    The policy travels inside the run config rather than as a mounted ConfigMap: a job submitted to a
    shared RayCluster (clusterSelector) cannot mount anything, yet must evaluate with the same policy."""
    spec = ft.spec
    config = {
        **_common(ft), "task": "finetune", "baseModelUri": base_model_uri, "method": spec.method,
        "objective": spec.objective,
        "dpo": (spec.dpo or DpoSpec()).wire() if spec.objective == "dpo" else None,
        "lora": _dump(spec.lora) if spec.method in ("lora", "qlora") else None,
        "evaluation": _dump(spec.evaluation),
        "output": {**_dump(spec.output), "uri": output_uri(ft)},
    }
    if guardrail_policy:
        config["evaluation"]["guardrailPolicy"] = guardrail_policy
    if judge_url and config["evaluation"].get("judge"):
        config["evaluation"]["judge"]["url"] = judge_url
    return config
