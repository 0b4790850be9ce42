"""TrainingJob and FineTune: DeepSpeed config, the KubeRay RayJob they build, and the status they report."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from llmops_operator.api.v1alpha1 import FineTune, TrainingJob
from llmops_operator.builders.deepspeed import deepspeed_config
from llmops_operator.builders.rayjob import build_rayjob
from llmops_operator.builders.runconfig import RUN_CONFIG_ENV, training_run_config
from llmops_operator.core.contract import Context, InvalidSpec, parse
from llmops_operator.controllers.finetune import FineTuneReconciler
from llmops_operator.controllers.trainingjob import TrainingJobReconciler
from llmops_operator.cli.render import render_paths
from llmops_operator.core.settings import Settings

from spec_options import with_

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def ctx() -> Context:
    settings = Settings(runtime_image="registry.example/llmops:1.0", ray_version="2.60.0")
    return Context(settings=settings, catalog=settings.catalog, now=NOW)


def training_job(*options, name="tj", generation=1) -> TrainingJob:
    spec = {"dataset": {"uri": "pvc://data/corpus.jsonl"}, "checkpoint": {"uri": "pvc://models/tj"}}
    for option in options:
        option(spec)
    return parse(TrainingJob, {"apiVersion": "llmops.dev/v1alpha1", "kind": "TrainingJob",
                               "metadata": {"name": name, "namespace": "ml", "generation": generation}, "spec": spec})


def fine_tune(*options, name="ft") -> FineTune:
    spec = {"baseModel": {"uri": "pvc://models/base"}, "dataset": {"uri": "pvc://data/sft.jsonl"},
            "output": {"uri": "pvc://models/ft"}}
    for option in options:
        option(spec)
    return parse(FineTune, {"apiVersion": "llmops.dev/v1alpha1", "kind": "FineTune",
                            "metadata": {"name": name, "namespace": "ml", "generation": 1}, "spec": spec})


def children(obj, refs=None) -> list[dict]:
    reconciler = TrainingJobReconciler() if isinstance(obj, TrainingJob) else FineTuneReconciler()
    return reconciler.children(obj, ctx(), refs or {})


def rayjob(obj, refs=None) -> dict:
    built = children(obj, refs)
    kinds = [c["kind"] for c in built]
    assert kinds[:4] == ["ConfigMap", "ServiceAccount", "Role", "RoleBinding"] and kinds[-1] == "RayJob"
    return built[-1]


def run_config(job: dict) -> dict:
    env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])["env_vars"]
    return json.loads(env[RUN_CONFIG_ENV])


# ----- DeepSpeed -----------------------------------------------------------------------------------

def test_deepspeed_batch_sizes_agree_with_the_workers():
    job = training_job(with_("resources.workers", 4), with_("training.batchSize", 8),
                       with_("training.gradientAccumulationSteps", 2))
    config = deepspeed_config(job.spec)
    assert config["train_micro_batch_size_per_gpu"] == 8
    assert config["gradient_accumulation_steps"] == 2
    assert config["train_batch_size"] == 64


def test_deepspeed_zero3_offload_and_raw_overrides():
    job = training_job(with_("deepspeed", {"zeroStage": 3, "offloadOptimizer": "cpu", "offloadParams": "cpu",
                                           "config": {"zero_optimization": {"stage3_max_live_parameters": 1000}}}))
    zero = deepspeed_config(job.spec)["zero_optimization"]
    assert zero["stage"] == 3
    assert zero["offload_optimizer"] == {"device": "cpu", "pin_memory": True}
    assert zero["offload_param"] == {"device": "cpu", "pin_memory": True}
    assert zero["stage3_max_live_parameters"] == 1000
    assert deepspeed_config(job.spec)["zero_force_ds_cpu_optimizer"] is False


def test_deepspeed_warms_up_only_when_asked():
    assert "scheduler" not in deepspeed_config(training_job().spec)
    warm = deepspeed_config(training_job(with_("training.warmupSteps", 5)).spec)["scheduler"]
    assert warm == {"type": "WarmupLR", "params": {"warmup_min_lr": 0.0, "warmup_max_lr": 3e-4, "warmup_num_steps": 5}}


def test_deepspeed_precision_and_disabled():
    assert deepspeed_config(training_job(with_("deepspeed.precision", "bf16")).spec)["bf16"] == {"enabled": True}
    assert deepspeed_config(training_job(with_("deepspeed.enabled", False)).spec) is None


def test_offload_params_needs_zero3():
    with pytest.raises(InvalidSpec, match="spec.deepspeed: offloadParams needs zeroStage 3"):
        training_job(with_("deepspeed", {"zeroStage": 2, "offloadParams": "cpu"}))


# ----- RayJob --------------------------------------------------------------------------------------

def test_rayjob_runs_the_training_entrypoint_on_its_own_cluster():
    job = rayjob(training_job(with_("maxDuration", "2h"), with_("pendingTimeout", "5m")))
    spec = job["spec"]
    assert job["apiVersion"] == "ray.io/v1" and job["metadata"]["namespace"] == "ml"
    assert job["metadata"]["labels"]["llmops.dev/trainingjob"] == "tj"
    assert spec["entrypoint"] == "python -m llmops_operator.entrypoints.train"
    assert spec["jobId"] == f"ml-{job['metadata']['name']}"
    assert spec["submissionMode"] == "K8sJobMode"
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] == 600
    assert spec["activeDeadlineSeconds"] == 7200 and spec["preRunningDeadlineSeconds"] == 300
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == "2.60.0"
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    workers = cluster["workerGroupSpecs"][0]
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == 1
    container = workers["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/llmops:1.0"
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "8Gi"}


def test_run_config_reaches_driver_and_workers_through_the_runtime_env():
    job = rayjob(training_job(with_("training.learningRate", 0.01)))
    config = run_config(job)
    assert config["task"] == "pretrain"
    assert config["owner"] == {"kind": "TrainingJob", "namespace": "ml", "name": "tj"}
    assert config["training"]["learningRate"] == 0.01
    assert config["deepspeed"]["optimizer"]["params"]["lr"] == 0.01
    assert config["outputUri"] == "pvc://models/tj/final"
    assert yaml.safe_load(job["spec"]["runtimeEnvYAML"])["env_vars"]["DS_ACCELERATOR"] == "cpu"


def test_gpu_workers_are_placed_and_priced_from_the_catalog():
    job = rayjob(training_job(with_("resources", {"workers": 2, "gpusPerWorker": 4, "gpuType": "nvidia-h100-80gb"}),
                              with_("scheduling", {"tolerations": [{"key": "team", "operator": "Exists"}],
                                                   "nodeSelector": {"zone": "a"}})))
    worker = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert worker["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert worker["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "zone": "a"}
    assert {"key": "team", "operator": "Exists"} in worker["tolerations"]
    assert "nvidia.com/gpu" not in head["containers"][0]["resources"]["limits"]
    assert head["nodeSelector"] == {"zone": "a"}
    assert "DS_ACCELERATOR" not in yaml.safe_load(job["spec"]["runtimeEnvYAML"])["env_vars"]


def test_unknown_gpu_type_is_an_invalid_spec_naming_the_field():
    job = training_job(with_("resources", {"gpusPerWorker": 1, "gpuType": "nvidia-b200"}))
    with pytest.raises(InvalidSpec, match=r"spec.resources.gpuType: unknown GPU type 'nvidia-b200'"):
        TrainingJobReconciler().check(job, ctx())


def test_kueue_queue_priority_and_existing_cluster():
    job = rayjob(training_job(with_("scheduling", {"queueName": "gpu-team", "priorityClassName": "high",
                                                   "clusterSelector": {"matchLabels": {"ray.io/cluster": "shared"}}})))
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-team"
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": "shared"}
    assert "rayClusterSpec" not in job["spec"] and "shutdownAfterJobFinishes" not in job["spec"]
    queued = rayjob(training_job(with_("scheduling", {"priorityClassName": "high"})))
    head = queued["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert head["priorityClassName"] == "high"


def test_pvc_uris_are_mounted_once_each():
    job = rayjob(training_job(with_("dataset.uri", "pvc://data/a.jsonl"), with_("outputUri", "pvc://data/out")))
    pod = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["models", "data"]
    assert {"name": "pvc-data", "mountPath": "/mnt/pvc/data"} in pod["containers"][0]["volumeMounts"]


def test_run_changes_make_a_new_rayjob_while_suspend_and_budget_patch_it():
    base = rayjob(training_job())
    assert rayjob(training_job())["metadata"]["name"] == base["metadata"]["name"]
    assert rayjob(training_job(with_("training.epochs", 3)))["metadata"]["name"] != base["metadata"]["name"]
    suspended = rayjob(training_job(with_("suspend", True), with_("budget", {"limit": 10})))
    assert suspended["metadata"]["name"] == base["metadata"]["name"]
    assert suspended["spec"]["suspend"] is True


def test_retries_set_kuberays_backoff_limit_and_reach_the_runtime_without_making_a_new_run():
    base = rayjob(training_job())
    assert base["spec"]["backoffLimit"] == 0 and run_config(base)["retries"] is None
    retried = rayjob(training_job(with_("retries", {"limit": 3, "backoff": "20s"})))
    assert retried["spec"]["backoffLimit"] == 3
    assert run_config(retried)["retries"] == {"limit": 3, "backoffSeconds": 20.0, "maxBackoffSeconds": 600.0}
    # How a run recovers is not what it runs: a Succeeded run stays the same RayJob, never re-run.
    assert retried["metadata"]["name"] == base["metadata"]["name"]


def test_any_transformers_family_is_accepted_and_chat_must_fit_a_sequence():
    assert training_job(with_("model.architecture", "qwen3")).spec.model.architecture == "qwen3"
    with pytest.raises(InvalidSpec, match="spec.model.architecture: String should match pattern"):
        training_job(with_("model.architecture", "Llama 3"))
    with pytest.raises(InvalidSpec, match="dataset.chat.maxLength 512 exceeds training.seqLength 128"):
        fine_tune(with_("dataset.chat", {"maxLength": 512}))
    with pytest.raises(InvalidSpec, match="chat needs records with a messages list"):
        fine_tune(with_("dataset.format", "text"), with_("dataset.chat", {}))
    with pytest.raises(InvalidSpec, match="a feature service yields texts, not messages"):
        training_job(with_("dataset", {"featureService": {"featureView": {"name": "fv"}, "service": "s",
                                                          "entitiesUri": "pvc://d/e.parquet"}, "chat": {}}))
    chat = run_config(rayjob(fine_tune(with_("dataset.chat", {"truncation": "left"}))))["dataset"]["chat"]
    assert chat == {"messagesField": "messages", "assistantOnlyLoss": True,
                    "truncation": "left", "packing": True}


def test_a_training_job_needs_somewhere_to_put_the_model():
    with pytest.raises(InvalidSpec, match="spec: set outputUri or checkpoint.uri"):
        parse(TrainingJob, {"apiVersion": "llmops.dev/v1alpha1", "kind": "TrainingJob", "metadata": {"name": "x"},
                            "spec": {"dataset": {"uri": "pvc://d/x"}}})


# ----- progress channel ---------------------------------------------------------------------------

def test_the_job_reports_through_one_configmap_it_may_patch_and_nothing_else():
    progress, account, role, binding, _, job = children(training_job())
    assert progress["metadata"]["name"] == "tj-tj-progress" and "data" not in progress
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["tj-tj-progress"],
                              "verbs": ["get", "patch"]}]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "tj-tj-reporter", "namespace": "ml"}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"] == account["metadata"]["name"]
    for group in [job["spec"]["rayClusterSpec"]["headGroupSpec"], job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]]:
        assert group["template"]["spec"]["serviceAccountName"] == "tj-tj-reporter"
    assert run_config(job)["progress"] == {"namespace": "ml", "configMap": "tj-tj-progress", "key": "progress.json"}


def test_reported_progress_and_checkpoint_reach_status():
    report = json.dumps({"progress": {"step": 12, "totalSteps": 40, "loss": 2.5, "firstLoss": 9.1,
                                      "tokensPerSecond": 1500.0, "etaSeconds": 30},
                         "checkpoint": {"uri": "pvc://models/tj", "step": 10, "resumedFromStep": 10}})
    fields = observe(training_job(), {"jobDeploymentStatus": "Running"}, report).fields
    assert fields["progress"] == {"step": 12, "totalSteps": 40, "epoch": 0, "loss": 2.5, "firstLoss": 9.1,
                                  "tokensPerSecond": 1500.0, "etaSeconds": 30}
    assert fields["checkpoint"] == {"uri": "pvc://models/tj", "step": 10, "resumedFromStep": 10}


@pytest.mark.parametrize("report", ["not json", json.dumps({"progress": {"step": "many"}}), json.dumps([1])])
def test_a_malformed_report_is_dropped_not_trusted(report):
    fields = observe(training_job(), {"jobDeploymentStatus": "Running"}, report).fields
    assert "progress" not in fields


# ----- status --------------------------------------------------------------------------------------

def live(job: dict, **status) -> dict:
    return {**job, "status": status}


def observe(obj, status: dict, report: str | None = None):
    reconciler = TrainingJobReconciler() if isinstance(obj, TrainingJob) else FineTuneReconciler()
    progress, *rest, job = children(obj)
    if report is not None:
        progress = {**progress, "data": {"progress.json": report}}
    return reconciler.status(obj, [progress, *rest, live(job, **status)], None, ctx(), {})


def by_type(observation) -> dict:
    return {c.type: c for c in observation.conditions}


@pytest.mark.parametrize("status,phase,ready", [
    ({}, "Pending", "Unknown"),
    ({"jobDeploymentStatus": "Initializing"}, "Initializing", "Unknown"),
    ({"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}, "Running", "Unknown"),
    ({"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}, "Succeeded", "True"),
    ({"jobDeploymentStatus": "Complete", "jobStatus": "STOPPED"}, "Failed", "False"),
    ({"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "reason": "DeadlineExceeded"}, "Failed", "False"),
    ({"jobDeploymentStatus": "Suspended"}, "Suspended", "Unknown"),
    # KubeRay between attempts of a RayJob with backoffLimit (spec.retries): not a failure yet.
    ({"jobDeploymentStatus": "Retrying", "jobStatus": "FAILED"}, "Retrying", "Unknown"),
])
def test_phase_and_ready_follow_kuberay(status, phase, ready):
    observation = observe(training_job(), status)
    assert observation.phase == phase
    assert by_type(observation)["Ready"].status == ready


def test_children_are_picked_by_kind_and_role_not_by_position():
    job = training_job()
    progress, *rest, built = children(job)
    progress = {**progress, "data": {"progress.json": json.dumps({"progress": {"step": 12, "totalSteps": 40}})}}
    in_order = [progress, *rest, live(built, jobDeploymentStatus="Running")]
    forward = TrainingJobReconciler().status(job, in_order, None, ctx(), {})
    backward = TrainingJobReconciler().status(job, in_order[::-1], None, ctx(), {})
    assert forward == backward
    assert (backward.phase, backward.fields["progress"]["step"]) == ("Running", 12)


def test_failure_keeps_kuberays_reason_and_message():
    observation = observe(training_job(), {"jobDeploymentStatus": "Failed", "jobStatus": "FAILED",
                                           "reason": "PreRunningDeadlineExceeded", "message": "no GPU nodes"})
    ready = by_type(observation)["Ready"]
    assert (ready.reason, ready.message) == ("PreRunningDeadlineExceeded", "no GPU nodes")


def test_success_reports_output_times_and_the_rayjob():
    start = (NOW - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (NOW - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    observation = observe(training_job(), {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED",
                                           "startTime": start, "endTime": end})
    fields = observation.fields
    assert fields["outputUri"] == "pvc://models/tj/final"
    assert fields["startTime"] == start and fields["completionTime"] == end
    assert fields["rayJob"]["jobStatus"] == "SUCCEEDED"
    # head 1 CPU/2Gi + one 2 CPU/8Gi worker at the default prices, for the 20 minutes between start and end
    rate = 3 * 0.0316 + 10 * 0.0042
    assert fields["cost"]["hourlyRate"] == round(rate, 4)
    assert fields["cost"]["accrued"] == round(rate / 3, 4)
    assert fields["cost"]["estimate"] == round(rate * 6, 4)


def test_accrual_advances_in_whole_minutes_while_running():
    start = (NOW - timedelta(seconds=150)).strftime("%Y-%m-%dT%H:%M:%SZ")
    observation = observe(training_job(), {"jobDeploymentStatus": "Running", "startTime": start})
    rate = observation.fields["cost"]["hourlyRate"]
    assert observation.fields["cost"]["accrued"] == round(rate * 120 / 3600, 4)


def test_budget_exceeded_is_reported():
    start = (NOW - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    over = observe(training_job(with_("budget", {"limit": 0.5})), {"jobDeploymentStatus": "Running", "startTime": start})
    under = observe(training_job(with_("budget", {"limit": 50})), {"jobDeploymentStatus": "Running", "startTime": start})
    assert by_type(over)["BudgetExceeded"].status == "True"
    assert by_type(under)["BudgetExceeded"].status == "False"
    assert "BudgetExceeded" not in by_type(observe(training_job(), {}))


# ----- FineTune ------------------------------------------------------------------------------------

def succeeded_training_job(output="pvc://models/tj/final") -> dict:
    return {"status": {"phase": "Succeeded", "outputUri": output,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded"}]}}


def test_fine_tune_run_config_carries_method_lora_and_base_model():
    config = run_config(rayjob(fine_tune(with_("lora.targetModules", ["c_attn"]))))
    assert config["task"] == "finetune" and config["method"] == "lora"
    assert config["baseModelUri"] == "pvc://models/base"
    assert config["lora"]["targetModules"] == ["c_attn"]
    assert config["output"]["uri"] == "pvc://models/ft"


def test_fine_tune_waits_for_its_training_job():
    ft = fine_tune(with_("baseModel", {"trainingJobRef": {"name": "tj"}}))
    reconciler = FineTuneReconciler()
    assert reconciler.references(ft) == [("TrainingJob", "tj")]
    missing = reconciler.status(ft, [], None, ctx(), {("TrainingJob", "tj"): None})
    assert reconciler.children(ft, ctx(), {("TrainingJob", "tj"): None}) is None
    assert (missing.phase, by_type(missing)["Ready"].reason) == ("Waiting", "TrainingJobNotFound")
    running = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "Unknown"}]}}
    pending = reconciler.status(ft, [], None, ctx(), {("TrainingJob", "tj"): running})
    assert by_type(pending)["BaseModelReady"].reason == "TrainingJobNotSucceeded"
    assert "phase Running" in by_type(pending)["BaseModelReady"].message
    failed = {"status": {"phase": "Failed", "conditions": [{"type": "Ready", "status": "False"}]}}
    blocked = reconciler.status(ft, [], None, ctx(), {("TrainingJob", "tj"): failed})
    assert (blocked.phase, by_type(blocked)["Ready"].reason) == ("Blocked", "TrainingJobFailed")
    job = rayjob(ft, {("TrainingJob", "tj"): succeeded_training_job()})
    assert run_config(job)["baseModelUri"] == "pvc://models/tj/final"


def test_a_reference_whose_conditions_are_null_is_not_ready_rather_than_a_crash():
    ft = fine_tune(with_("baseModel", {"trainingJobRef": {"name": "tj"}}))
    nulled = {"status": {"phase": "Running", "conditions": None, "outputUri": "pvc://models/tj/final"}}
    waiting = FineTuneReconciler().status(ft, [], None, ctx(), {("TrainingJob", "tj"): nulled})
    assert by_type(waiting)["BaseModelReady"].reason == "TrainingJobNotSucceeded"


def test_fine_tune_carries_the_evaluation_guardrail_policy_in_its_run_config():
    ft = fine_tune(with_("evaluation", {"dataset": {"uri": "pvc://data/eval.jsonl"},
                                        "guardrailRef": {"name": "policy"}}))
    reconciler = FineTuneReconciler()
    not_ready = {("Guardrail", "policy"): {"status": {}}}
    assert reconciler.children(ft, ctx(), not_ready) is None
    waiting = by_type(reconciler.status(ft, [], None, ctx(), not_ready))
    assert waiting["Ready"].reason == waiting["GuardrailReady"].reason == "GuardrailNotReady"
    assert waiting["BaseModelReady"].status == "True"  # the base model is not what the FineTune waits for
    missing = by_type(reconciler.status(ft, [], None, ctx(), {("Guardrail", "policy"): None}))
    assert (missing["GuardrailReady"].status, missing["GuardrailReady"].reason) == ("False", "GuardrailNotFound")
    guardrail = {"apiVersion": "llmops.dev/v1alpha1", "kind": "Guardrail",
                 "metadata": {"name": "policy", "namespace": "ml"},
                 "spec": {"checks": [{"name": "tox", "type": "toxicity", "threshold": 0.7}]},
                 "status": {"policyConfigMap": "policy-abc123"}}
    job = rayjob(ft, {("Guardrail", "policy"): guardrail})
    running = by_type(reconciler.status(ft, [*children(ft, {("Guardrail", "policy"): guardrail})[:-1], live(job)],
                                        None, ctx(), {("Guardrail", "policy"): guardrail}))
    assert (running["GuardrailReady"].status, running["BaseModelReady"].status) == ("True", "True")
    policy = run_config(job)["evaluation"]["guardrailPolicy"]
    assert [c["name"] for c in policy["checks"]] == ["tox"] and policy["checks"][0]["threshold"] == 0.7


@pytest.mark.parametrize("spec,message", [
    ({"baseModel": {}}, "set exactly one of baseModel.uri and baseModel.trainingJobRef"),
    ({"method": "qlora"}, "method qlora needs CUDA GPUs"),
    ({"output": {}}, "set output.uri or checkpoint.uri"),
    ({"lora": {"r": 0}}, "spec.lora.r: Input should be greater than or equal to 1"),
])
def test_fine_tune_rejects_bad_specs_naming_the_field(spec, message):
    with pytest.raises(InvalidSpec, match=message):
        fine_tune(lambda s: s.update(spec))


def test_render_previews_a_fine_tune_of_a_training_job_in_the_same_file_set(tmp_path):
    manifest = tmp_path / "chain.yaml"
    manifest.write_text(yaml.safe_dump_all([
        {"apiVersion": "llmops.dev/v1alpha1", "kind": "TrainingJob", "metadata": {"name": "base"},
         "spec": {"dataset": {"uri": "pvc://d/x"}, "outputUri": "pvc://models/base"}},
        {"apiVersion": "llmops.dev/v1alpha1", "kind": "FineTune", "metadata": {"name": "ft"},
         "spec": {"baseModel": {"trainingJobRef": {"name": "base"}}, "dataset": {"uri": "pvc://d/y"},
                  "output": {"uri": "pvc://models/ft"}}},
    ]))
    jobs = [c for c in render_paths([manifest]) if c["kind"] == "RayJob"]
    assert [j["metadata"]["labels"]["app.kubernetes.io/instance"] for j in jobs] == ["base", "ft"]
    assert run_config(jobs[1])["baseModelUri"] == "pvc://models/base"


def test_crd_carries_the_cross_field_rules():
    tj = yaml.safe_load((ROOT / "crds" / "llmops.dev_trainingjobs.yaml").read_text())
    ft = yaml.safe_load((ROOT / "crds" / "llmops.dev_finetunes.yaml").read_text())
    rules = json.dumps(tj) + json.dumps(ft)
    for message in ["set outputUri or checkpoint.uri", "set output.uri or checkpoint.uri",
                    "checkpoint.uri is immutable", "set exactly one of baseModel.uri and baseModel.trainingJobRef"]:
        assert message in rules


# ----- budget actions ------------------------------------------------------------------------------

def with_status(obj, **status):
    """The object as the operator sees it on its next pass: with the status it wrote last."""
    body = {"apiVersion": obj.api_version, "kind": obj.kind,
            "metadata": {"name": obj.name, "namespace": obj.namespace, "generation": 1},
            "spec": obj.spec.wire(), "status": status}
    return parse(type(obj), body)


SPENT = {"conditions": [{"type": "BudgetExceeded", "status": "True", "reason": "BudgetExceeded", "message": "",
                         "lastTransitionTime": "2026-05-01T11:00:00Z"}],
         "cost": {"currency": "USD", "hourlyRate": 1.0, "accrued": 0.6, "estimate": 6.0, "budget": 0.5}}


@pytest.mark.parametrize("action,phase,suspend", [("Suspend", "Suspended", True), ("Stop", "Stopped", True),
                                                   ("Alert", "Running", False)])
def test_a_spent_budget_suspends_or_stops_the_rayjob(action, phase, suspend):
    job = with_status(training_job(with_("budget", {"limit": 0.5, "action": action})), **SPENT)
    assert rayjob(job)["spec"]["suspend"] is suspend
    start = (NOW - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    progress, *rest, built = children(job)
    observation = TrainingJobReconciler().status(
        job, [progress, *rest, live(built, jobDeploymentStatus="Suspended" if suspend else "Running", startTime=start)],
        None, ctx(), {})
    assert observation.phase == phase
    if suspend:
        assert by_type(observation)["Suspended"].reason == "BudgetExceeded"
        assert observation.fields["cost"]["accrued"] == 0.6  # frozen while nothing runs


def test_raising_the_limit_resumes_a_suspended_job():
    job = with_status(training_job(with_("budget", {"limit": 5, "action": "Suspend"})), **SPENT)
    assert rayjob(job)["spec"]["suspend"] is False


def test_the_hold_is_decided_by_the_measured_spend_not_by_a_reported_condition():
    """The RayJob builder itself renders the hold, from spec.budget and the spend last measured: a status with
    no BudgetExceeded condition still holds a job whose spend reached the limit, and a stale BudgetExceeded=True
    holds nothing once the spend is below it."""
    budget = with_("budget", {"limit": 0.5, "action": "Suspend"})
    measured = with_status(training_job(budget), cost=SPENT["cost"])
    built = build_rayjob(measured, training_run_config(measured), image="img", ray_version="2.60.0",
                         catalog=ctx().catalog)
    assert built["spec"]["suspend"] is True
    assert TrainingJobReconciler().status(measured, [*children(measured)[:-1], live(built)], None, ctx(),
                                          {}).phase == "Suspended"
    stale = with_status(training_job(budget), conditions=SPENT["conditions"], cost={**SPENT["cost"], "accrued": 0.1})
    assert rayjob(stale)["spec"]["suspend"] is False


def test_a_budget_below_the_estimate_is_a_warning_condition():
    low = observe(training_job(with_("budget", {"limit": 0.01}), with_("maxDuration", "10h")), {})
    fits = by_type(low)["BudgetFitsEstimate"]
    assert fits.status == "False" and "below the estimate" in fits.message
    assert by_type(observe(training_job(with_("budget", {"limit": 100})), {}))["BudgetFitsEstimate"].status == "True"


# ----- FineTune evaluation, gates and promotion ---------------------------------------------------

def evaluated_fine_tune(*options):
    return fine_tune(with_("evaluation", {"dataset": {"uri": "pvc://data/eval.jsonl"}, "metrics": ["rougeL"]}),
                     with_("gates", {"minScore": 0.3, "minSafety": 0.9}), *options)


def finished(ft, evaluation: dict | None, refs=None):
    progress, *rest, job = children(ft)
    if evaluation is not None:
        progress = {**progress, "data": {"progress.json": json.dumps({"evaluation": evaluation})}}
    return FineTuneReconciler().status(
        ft, [progress, *rest, live(job, jobDeploymentStatus="Complete", jobStatus="SUCCEEDED")], None, ctx(), refs or {})


def test_passed_gates_make_the_fine_tune_ready_with_its_scores_and_safety():
    observation = finished(evaluated_fine_tune(), {
        "scores": {"rougeL": 0.41}, "primaryMetric": "rougeL", "gate": "Passed", "gateMessage": "passed rougeL and safety",
        "safety": {"score": 0.95, "evaluated": 20, "byRule": {"pii": 1}}})
    assert observation.phase == "Succeeded" and by_type(observation)["Ready"].status == "True"
    assert observation.fields["evaluation"]["scores"] == {"rougeL": 0.41}
    assert observation.fields["safety"]["score"] == 0.95


def test_a_failed_gate_ends_gate_failed_and_not_ready():
    observation = finished(evaluated_fine_tune(), {
        "scores": {"rougeL": 0.1}, "primaryMetric": "rougeL", "gate": "Failed", "gateMessage": "rougeL 0.1 is not at least 0.3"})
    assert observation.phase == "GateFailed"
    ready = by_type(observation)["Ready"]
    assert ready.status == "False" and ready.reason == "GateFailed" and "rougeL 0.1" in ready.message


def test_a_missing_evaluation_report_is_a_failure_not_a_success():
    observation = finished(evaluated_fine_tune(), None)
    assert observation.phase == "Failed" and by_type(observation)["Evaluated"].reason == "EvaluationMissing"


def test_promotion_is_reported_only_when_the_service_serves_this_output():
    ft = evaluated_fine_tune(with_("output.promote", {"inferenceServiceRef": {"name": "assistant"}}))
    passed = {"scores": {"rougeL": 0.5}, "safety": {"score": 0.95, "evaluated": 20}}
    serving = {("InferenceService", "assistant"): {"spec": {"model": {"fineTuneRef": {"name": "ft"}}}}}
    other = {("InferenceService", "assistant"): {"spec": {"model": {"fineTuneRef": {"name": "older"}}}}}
    promoted = finished(ft, passed, serving)
    assert promoted.fields["promotedTo"] == "assistant" and by_type(promoted)["Promoted"].status == "True"
    waiting = finished(ft, passed, other)
    assert "promotedTo" not in waiting.fields and by_type(waiting)["Promoted"].reason == "NotReferenced"
    assert by_type(waiting)["Ready"].status == "True"  # the output is good; serving it is the user's call
    as_adapter = {("InferenceService", "assistant"): {"spec": {"model": {"uri": "pvc://m/base"}, "adapters": [
        {"name": "support", "fineTuneRef": {"name": "ft"}}]}}}
    adapter = finished(ft, passed, as_adapter)
    assert by_type(adapter)["Promoted"].reason == "ServingAdapter" and "'support'" in by_type(adapter)["Promoted"].message
    assert adapter.fields["promotedTo"] == "assistant"
