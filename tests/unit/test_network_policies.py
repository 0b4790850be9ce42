"""Ray pods and guarded predictors are closed to the rest of the cluster; Ray clusters ask for a token."""

from __future__ import annotations

from datetime import datetime, timezone

from llmops_operator.api.v1alpha1 import FineTune, InferenceService, TrainingJob
from llmops_operator.builders.rayjob import build_rayjob
from llmops_operator.controllers.finetune import FineTuneReconciler
from llmops_operator.controllers.inferenceservice import InferenceServiceReconciler
from llmops_operator.controllers.trainingjob import TrainingJobReconciler
from llmops_operator.core.contract import Context, parse
from llmops_operator.core.settings import Settings


def ctx(**settings) -> Context:
    values = Settings(runtime_image="registry.example/llmops:1.0",
                      control_plane_namespaces=["kuberay-system", "llmops"], **settings)
    return Context(settings=values, catalog=values.catalog, now=datetime(2026, 5, 1, tzinfo=timezone.utc))


def obj(kind: type, spec: dict, name: str = "same"):
    return parse(kind, {"apiVersion": "llmops.dev/v1alpha1", "kind": kind.info.kind,
                        "metadata": {"name": name, "namespace": "ml", "generation": 1}, "spec": spec})


TJ = {"dataset": {"uri": "pvc://data/corpus.jsonl"}, "checkpoint": {"uri": "pvc://models/tj"}}
FT = {"baseModel": {"uri": "pvc://models/base"}, "dataset": {"uri": "pvc://data/sft.jsonl"},
      "output": {"uri": "pvc://models/ft"}}


def policies(children: list[dict]) -> list[dict]:
    return [c for c in children if c["kind"] == "NetworkPolicy"]


def test_ray_pods_take_traffic_only_from_their_own_objects_pods_and_the_control_plane():
    [tj_policy] = policies(TrainingJobReconciler().children(obj(TrainingJob, TJ), ctx(), {}))
    spec = tj_policy["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    assert spec["podSelector"] == {"matchLabels": {"llmops.dev/trainingjob": "same"}, "matchExpressions": [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["ray-head", "ray-worker"]}]}
    [rule] = spec["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"llmops.dev/trainingjob": "same"}}},
        {"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                                     "values": ["kuberay-system", "llmops"]}]}}]
    [ft_policy] = policies(FineTuneReconciler().children(obj(FineTune, FT), ctx(), {}))
    assert ft_policy["metadata"]["name"] != tj_policy["metadata"]["name"]
    assert ft_policy["spec"]["podSelector"]["matchLabels"] == {"llmops.dev/finetune": "same"}


def test_the_ray_pods_carry_the_labels_the_policy_selects():
    children = TrainingJobReconciler().children(obj(TrainingJob, TJ), ctx(), {})
    [policy], rayjob = policies(children), children[-1]
    cluster = rayjob["spec"]["rayClusterSpec"]
    selected = policy["spec"]["podSelector"]
    for template in [cluster["headGroupSpec"]["template"], cluster["workerGroupSpecs"][0]["template"]]:
        pod_labels = template["metadata"]["labels"]
        assert selected["matchLabels"].items() <= pod_labels.items()
        assert pod_labels["app.kubernetes.io/component"] in selected["matchExpressions"][0]["values"]
    peer = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert peer.items() <= rayjob["spec"]["submitterPodTemplate"]["metadata"]["labels"].items()


def test_a_job_on_a_shared_cluster_renders_no_policy_and_policies_can_be_turned_off():
    shared = {**TJ, "scheduling": {"clusterSelector": {"matchLabels": {"ray.io/cluster": "shared"}}}}
    assert policies(TrainingJobReconciler().children(obj(TrainingJob, shared), ctx(), {})) == []
    assert policies(TrainingJobReconciler().children(obj(TrainingJob, TJ), ctx(network_policies=False), {})) == []


def service(**extra) -> InferenceService:
    return obj(InferenceService, {"model": {"uri": "pvc://models/assistant", "format": "huggingface"}, **extra},
               name="assistant")


def test_a_guarded_predictor_takes_traffic_only_from_its_transformer():
    isvc, policy = InferenceServiceReconciler().children(service(transformer={"cpu": "1", "memory": "1Gi"}), ctx(), {})
    name = isvc["metadata"]["name"]
    assert policy["spec"]["podSelector"] == {"matchLabels": {"serving.kserve.io/inferenceservice": name,
                                                             "component": "predictor"}}
    assert policy["spec"]["ingress"][0]["from"][0] == {"podSelector": {"matchLabels": {
        "serving.kserve.io/inferenceservice": name, "component": "transformer"}}}
    # without a transformer the predictor is what callers reach: no policy closes it
    assert policies(InferenceServiceReconciler().children(service(), ctx(), {})) == []


def test_ray_clusters_ask_kuberay_for_token_authentication_where_ray_has_it():
    job = obj(TrainingJob, TJ)
    settings = ctx().settings

    def cluster(version: str) -> dict:
        built = build_rayjob(job, {}, image="img", ray_version=version, catalog=settings.catalog)
        return built["spec"]["rayClusterSpec"]
    assert cluster("2.60.0")["authOptions"] == {"mode": "token"}
    assert cluster("2.52.1")["authOptions"] == {"mode": "token"}
    assert "authOptions" not in cluster("2.46.0")
    assert "dashboard-host" in cluster("2.60.0")["headGroupSpec"]["rayStartParams"]  # reachable, but only with a token
