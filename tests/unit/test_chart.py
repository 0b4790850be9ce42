"""The Helm chart, rendered and linted with the real Helm engine (helm-python-sdk embeds Helm v4's Go SDK)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from chart_render import (
    CHART, NAMESPACE, RBAC_KINDS, ROOT, chart_values, container, grants, helm, objects, one, render,
)
from llmops_operator.api.v1alpha1 import ALL_KINDS, GROUP
from llmops_operator.cli.main import parser as cli_parser
from llmops_operator.k8s.resources import KNOWN
from llmops_operator.core.pricing import PriceCatalog, default_catalog
from llmops_operator.core.settings import Settings

WORKLOAD_VERBS = {"get", "list", "watch", "create", "patch", "delete"}

# Every kind in k8s/resources.py must be classified: written by the operator (RBAC must grant WORKLOAD_VERBS), or
# not written, with the reason. Adding a kind there without deciding here fails test_every_known_kind_is_classified.
WRITTEN_CHILDREN = {
    ("v1", "ConfigMap"), ("batch/v1", "Job"), ("batch/v1", "CronJob"),
    ("ray.io/v1", "RayJob"), ("serving.kserve.io/v1beta1", "InferenceService"),
    ("v1", "ServiceAccount"), ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("serving.kserve.io/v1alpha1", "LLMInferenceService"), ("serving.kserve.io/v1alpha1", "LocalModelNamespaceCache"),
    ("v1", "PersistentVolumeClaim"), ("apps/v1", "Deployment"), ("v1", "Service"),
}
NOT_WRITTEN = {
    ("v1", "Namespace"): "kopf lists/watches namespaces (cluster mode); only the sandbox client creates them",
    ("v1", "Secret"): "referenced by SecretKeyRef and mounted into pods; the operator never reads or writes it",
    ("v1", "Pod"): "pods belong to Jobs/RayJobs; the operator does not touch them",
    ("v1", "Event"): "Events are posted and counted again (create, get, patch; granted separately)",
    ("ray.io/v1", "RayCluster"): "RayJobs own their RayClusters; KubeRay manages them",
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): "kopf lists/watches CRDs (granted separately)",
}


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


# ---------------------------------------------------------------------------------------------------------------
# Chart metadata, lint, schema


def test_chart_metadata():
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2"
    assert (meta["name"], meta["version"], meta["appVersion"]) == ("llmops-operator", "0.1.0", "0.1.0")
    assert meta["kubeVersion"].startswith(">=1.28")


def test_lint_is_clean():
    for kwargs in [{}, {"strict": True, "kube_version": "v1.28.0"}]:
        report = helm.lint(str(CHART), **kwargs)
        assert report["errors"] == [], report
        assert [m for m in report["messages"] if m["severity"] >= 2] == [], report
    report = helm.lint(str(CHART), {"watchNamespaces": ["team-a"], "serviceMonitor": {"enabled": True}}, strict=True)
    assert report["errors"] == [], report


def test_values_schema_is_draft07_and_closed():
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(chart_values()), "every top-level value is in the schema, and back"
    helm.Chart.load(str(CHART)).validate_schema(chart_values())


@pytest.mark.parametrize("values, where", [
    ({"replicaCount": 2}, "additional properties 'replicaCount' not allowed"),
    ({"pricing": {"cpuCoreHour": "cheap"}}, "/pricing/cpuCoreHour"),
    ({"pricing": {"gpus": {"nvidia-b200": {"hourly": -1}}}}, "/pricing/gpus/nvidia-b200/hourly"),
    ({"pricing": {"gpus": {"nvidia-b200": {"price": 9}}}}, "/pricing/gpus/nvidia-b200"),
    ({"pricing": {"tokens": {"default": {"inputPer1K": 0.1}}}}, "/pricing/tokens/default"),
    ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
    ({"watchNamespaces": "team-a"}, "/watchNamespaces"),
    ({"watchNamespaces": ["team-a", "kube-system"]}, "/watchNamespaces/1"),
    ({"replicas": 0}, "/replicas"),
    ({"leaderElection": {"enabled": "yes", "leaseName": "x"}}, "/leaderElection/enabled"),
    ({"systemNamespacePolicy": {"enabled": True, "extraNamespaces": ["Not_A_Name"]}},
     "/systemNamespacePolicy/extraNamespaces/0"),
    ({"logFormat": "xml"}, "/logFormat"),
    ({"serviceMonitor": {"enabled": "yes"}}, "/serviceMonitor/enabled"),
    ({"metrics": {"port": 70000}}, "/metrics/port"),
])
def test_bad_values_are_rejected_with_a_readable_error(values, where):
    with pytest.raises(helm.HelmValuesError) as err:
        render(values)
    message = str(err.value)
    assert "llmops-operator" in message and where in message, message


# ---------------------------------------------------------------------------------------------------------------
# Default render


def test_default_render_kinds():
    kinds = sorted(d["kind"] for d in objects())
    assert kinds == sorted(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment",
                            "Service"])
    for doc in objects():
        if doc["kind"] not in {"ClusterRole", "ClusterRoleBinding"}:
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]


def test_deployment_shape():
    docs = objects()
    deployment = one(docs, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container(docs)
    assert c["image"] == "ghcr.io/llmops-operator/llmops-operator:0.1.0"
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"healthz": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/tmp"]]["emptyDir"] == {}
    assert volumes[mounts["/etc/llmops"]]["configMap"]["name"] == one(docs, "ConfigMap")["metadata"]["name"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["LLMOPS_PRICING_FILE"] == "/etc/llmops/pricing.yaml"
    assert env["LLMOPS_LOG_FORMAT"] == "json" and float(env["LLMOPS_RESYNC_SECONDS"]) == 60


def test_args_are_the_cli_s_own():
    """The Deployment's args parse with `llmops`'s own argparse parser (the image's ENTRYPOINT is `llmops`)."""
    args = cli_parser().parse_args(container(objects())["args"])
    assert (args.command, args.all_namespaces, args.namespace) == ("run", True, [])
    assert (args.liveness_port, args.metrics_port) == (8080, 9090)
    args = cli_parser().parse_args(container(objects({"watchNamespaces": ["team-a", "team-b"]}))["args"])
    assert (args.all_namespaces, args.namespace) == (False, ["team-a", "team-b"])
    args = cli_parser().parse_args(container(objects({"livenessPort": 8181, "metrics": {"port": 9191}}))["args"])
    assert (args.liveness_port, args.metrics_port) == (8181, 9191)


def test_optional_env():
    env = {e["name"] for e in container(objects())["env"]}
    assert "LLMOPS_RUNTIME_IMAGE" not in env and "LLMOPS_RAY_VERSION" not in env
    c = container(objects({"runtimeImage": "registry.example/llmops-runtime:1", "rayVersion": "2.52.0"}))
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["LLMOPS_RUNTIME_IMAGE"] == "registry.example/llmops-runtime:1"
    assert env["LLMOPS_RAY_VERSION"] == "2.52.0"


def test_serving_engine_settings_reach_the_operator():
    values = {"prometheusUrl": "http://prometheus.monitoring:9090", "storageInitializerImage": "mirror/si:v0.20.0",
              "llmGatewayAddress": "inference-gw.gateways:80"}
    env = {e["name"]: e["value"] for e in container(objects(values))["env"]}
    settings = Settings(prometheus_url=env["LLMOPS_PROMETHEUS_URL"],
                        storage_initializer_image=env["LLMOPS_STORAGE_INITIALIZER_IMAGE"],
                        llm_gateway_address=env["LLMOPS_LLM_GATEWAY_ADDRESS"])
    assert (settings.prometheus_url, settings.storage_initializer_image, settings.llm_gateway_address) == (
        "http://prometheus.monitoring:9090", "mirror/si:v0.20.0", "inference-gw.gateways:80")
    assert not {"LLMOPS_PROMETHEUS_URL", "LLMOPS_LLM_GATEWAY_ADDRESS"} & {e["name"] for e in container(objects())["env"]}


def test_network_policy_settings_reach_the_operator_with_the_release_namespace():
    env = {e["name"]: e["value"] for e in container(objects())["env"]}
    settings = Settings(network_policies=env["LLMOPS_NETWORK_POLICIES"],
                        control_plane_namespaces=json.loads(env["LLMOPS_CONTROL_PLANE_NAMESPACES"]))
    assert settings.network_policies is True
    assert settings.control_plane_namespaces == ["kuberay-system", NAMESPACE]
    env = {e["name"]: e["value"] for e in container(objects({"networkPolicies": {"enabled": False}}))["env"]}
    assert env["LLMOPS_NETWORK_POLICIES"] == "false"


def test_scheduling_values_pass_through():
    values = {"nodeSelector": {"kubernetes.io/os": "linux"},
              "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
              "affinity": {"nodeAffinity": {}}, "podAnnotations": {"a": "b"}, "image": {"tag": "dev"}}
    deployment = one(objects(values), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == values["nodeSelector"]
    assert pod["tolerations"] == values["tolerations"]
    assert pod["affinity"] == values["affinity"]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["a"] == "b"
    assert pod["containers"][0]["image"].endswith(":dev")


# ---------------------------------------------------------------------------------------------------------------
# Pricing


def test_pricing_configmap_equals_values_and_loads_as_a_price_catalog(tmp_path, monkeypatch):
    configmap = one(objects(), "ConfigMap")
    text = configmap["data"]["pricing.yaml"]
    pricing = chart_values()["pricing"]
    assert yaml.safe_load(text) == pricing
    path = tmp_path / "pricing.yaml"
    path.write_text(text)
    catalog = PriceCatalog.load(path)
    assert catalog.currency == "USD"
    assert catalog.cpu_core_hour == pricing["cpuCoreHour"] and catalog.memory_gi_b_hour == pricing["memoryGiBHour"]
    # The same GPU type names and prices as the built-in catalog (sandbox, `llmops render`) and the API docs
    # (gpuType "nvidia-h100-80gb"), so a manifest that works in the sandbox prices the same on a cluster.
    builtin = default_catalog()
    assert set(catalog.gpus) == set(builtin.gpus) == {"nvidia-h100-80gb", "nvidia-a100-80gb", "nvidia-l4"}
    assert (catalog.cpu_core_hour, catalog.memory_gi_b_hour) == (builtin.cpu_core_hour, builtin.memory_gi_b_hour)
    for name, gpu in catalog.gpus.items():
        assert gpu.hourly == pricing["gpus"][name]["hourly"] == builtin.gpus[name].hourly
        assert gpu.node_selector == builtin.gpus[name].node_selector
        assert any(t["key"] == "nvidia.com/gpu" for t in gpu.tolerations)
    assert "default" in catalog.tokens
    # The operator reads it the way the Deployment tells it to: LLMOPS_PRICING_FILE.
    from llmops_operator.core.settings import Settings

    monkeypatch.setenv("LLMOPS_PRICING_FILE", str(path))
    assert Settings().catalog == catalog


def test_custom_pricing_renders_and_restarts_the_pod(tmp_path):
    custom = {"currency": "EUR", "cpuCoreHour": 0.05, "memoryGiBHour": 0.01,
              "gpus": {"nvidia-l4": {"hourly": 0.7}}, "tokens": {}}
    default_hash = one(objects(), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/pricing"]
    docs = objects({"pricing": custom})
    text = one(docs, "ConfigMap")["data"]["pricing.yaml"]
    (tmp_path / "p.yaml").write_text(text)
    catalog = PriceCatalog.load(tmp_path / "p.yaml")
    assert catalog.currency == "EUR" and catalog.gpus["nvidia-l4"].hourly == 0.7
    new_hash = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/pricing"]
    assert new_hash != default_hash
    assert new_hash == hashlib.sha256(text.rstrip("\n").encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# RBAC


@pytest.mark.parametrize("values", [None, {"watchNamespaces": ["team-a", "team-b"]}])
def test_no_wildcards_in_rbac(values):
    for doc in objects(values):
        if doc["kind"] not in RBAC_KINDS:
            continue
        assert "aggregationRule" not in doc
        for rule in doc["rules"]:
            if "resourceNames" in rule:
                assert rule == ENGINE_CRD_RULE, f"only the engine CRDs' schemas are read by name: {rule}"
            assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, f"no nonResourceURLs: {rule}"
            for key in ("apiGroups", "resources", "verbs"):
                assert rule[key], rule
                assert not any("*" in item for item in rule[key]), f"wildcard in {doc['kind']} rule {rule}"


def test_the_operator_reads_the_engine_crds_by_name_only():
    """`get` on CRDs is granted for the engine CRDs the operator prunes its children against, and no other."""
    from llmops_operator.controllers.children import ENGINES

    for values in (None, {"watchNamespaces": ["team-a"]}):
        rules = [r for d in objects(values) if d["kind"] == "ClusterRole" for r in d["rules"] if "get" in r["verbs"]
                 and "customresourcedefinitions" in r["resources"]]
        assert rules == [ENGINE_CRD_RULE]
    assert set(ENGINE_CRD_RULE["resourceNames"]) == {crd for crd, _ in ENGINES.values()}


def test_every_rbac_rule_says_who_needs_it():
    for name in ("_helpers.tpl",):
        text = (CHART / "templates" / name).read_text()
        rules = text.count("- apiGroups:")
        assert rules and rules == text.count("# kopf") + text.count("# app"), "each rule has a kopf/app comment"


def test_every_known_kind_is_classified():
    assert set(KNOWN) == WRITTEN_CHILDREN | set(NOT_WRITTEN)
    assert not WRITTEN_CHILDREN & set(NOT_WRITTEN)


ENGINE_CRD_RULE = {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
                   "resourceNames": ["rayjobs.ray.io", "inferenceservices.serving.kserve.io",
                                     "llminferenceservices.serving.kserve.io"], "verbs": ["get"]}


def required_grants(cluster_wide: bool) -> dict[tuple[str, str], set[str]]:
    need: dict[tuple[str, str], set[str]] = {("", "events"): {"create", "get", "patch"}}
    for kind in ALL_KINDS:
        plural = kind.info.plural
        need[(GROUP, plural)] = {"get", "list", "watch", "patch"}
        need[(GROUP, f"{plural}/status")] = {"patch"}
        need[(GROUP, f"{plural}/finalizers")] = {"update"}
    for plural in ("finetunes", "trainingjobs"):  # spec.retrain creates runs from a template
        need[(GROUP, plural)].add("create")
    for api_version, kind in WRITTEN_CHILDREN:
        need[(group_of(api_version), KNOWN[(api_version, kind)].plural)] = set(WORKLOAD_VERBS)
    from llmops_operator.controllers.kinds import RECONCILER_CLASSES

    for reconciler in RECONCILER_CLASSES:
        for child in reconciler.watches:
            need.setdefault((child.group, child.plural), set()).update({"get", "list", "watch"})
    if cluster_wide:
        need[("", "namespaces")] = {"list", "watch"}
    return need


def assert_covers(granted: dict[tuple[str, str], set[str]], need: dict[tuple[str, str], set[str]]) -> None:
    missing = {key: verbs - granted.get(key, set()) for key, verbs in need.items() if verbs - granted.get(key, set())}
    assert not missing, f"RBAC lacks: {missing}"


def test_cluster_wide_rbac_covers_what_the_operator_does():
    docs = objects()
    assert not [d for d in docs if d["kind"] in {"Role", "RoleBinding"}]
    role = one(docs, "ClusterRole")
    granted = grants(docs)
    assert_covers(granted, required_grants(cluster_wide=True) | {
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}})
    # Least privilege: nothing beyond what is needed (namespaces and CRDs are read-only, events posted and counted).
    assert granted[("", "namespaces")] == {"list", "watch"}
    assert granted[("apiextensions.k8s.io", "customresourcedefinitions")] == {"list", "watch", "get"}
    assert granted[("", "events")] == {"create", "get", "patch"}
    # Services: only the guardrail gateway's, in front of an LLMInferenceService.
    assert not {k for k in granted if k[1] in {"secrets", "pods", "clusterroles", "clusterrolebindings"}}
    # Roles for run reporters are granted without the verbs that would let the operator grant what it lacks.
    assert not {verb for k, verbs in granted.items() if k[1] in {"roles", "rolebindings"} for verb in verbs} \
        & {"escalate", "bind"}
    assert not [k for k in granted if k[0] in {"kopf.dev", "coordination.k8s.io"}], "kopf peering is not used"
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    sa = one(docs, "ServiceAccount")["metadata"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"], "namespace": NAMESPACE}]


def test_watch_namespaces_switch_to_roles():
    namespaces = ["team-a", "team-b"]
    docs = objects({"watchNamespaces": namespaces})
    roles = [d for d in docs if d["kind"] == "Role"]
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == namespaces
    assert sorted(b["metadata"]["namespace"] for b in bindings) == namespaces
    for role in roles:
        assert_covers(grants([role], kinds={"Role"}), required_grants(cluster_wide=False))
        assert ("", "namespaces") not in grants([role], kinds={"Role"})
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"][0]["namespace"] == NAMESPACE
    # The only ClusterRole left is kopf's read-only view of CRDs; no namespaced permission is cluster-wide.
    cluster = grants(docs, kinds={"ClusterRole"})
    assert cluster == {("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch", "get"}}
    crb = one(docs, "ClusterRoleBinding")
    assert crb["roleRef"]["name"] == one(docs, "ClusterRole")["metadata"]["name"]


def test_rbac_and_service_account_can_be_turned_off():
    docs = objects({"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "existing"}})
    assert not [d for d in docs if d["kind"] in {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding",
                                                  "ServiceAccount"}]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "existing"
    docs = objects({"serviceAccount": {"name": "ops"}})
    assert one(docs, "ServiceAccount")["metadata"]["name"] == "ops"
    assert one(docs, "ClusterRoleBinding")["subjects"][0]["name"] == "ops"


# ---------------------------------------------------------------------------------------------------------------
# Metrics


def test_service_monitor_only_when_enabled():
    assert not [d for d in objects() if d["kind"] == "ServiceMonitor"]
    docs = objects({"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}})
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]
    assert service["spec"]["selector"].items() <= one(docs, "Deployment")["spec"]["template"]["metadata"][
        "labels"].items()


def test_service_monitor_needs_the_metrics_service():
    with pytest.raises(helm.HelmError, match="serviceMonitor.enabled needs metrics.service.enabled"):
        render({"serviceMonitor": {"enabled": True}, "metrics": {"service": {"enabled": False}}})


# ---------------------------------------------------------------------------------------------------------------
# CRDs


def test_chart_crds_equal_the_generated_crds():
    generated = {p.name: p.read_text() for p in (ROOT / "crds").glob("llmops.dev_*.yaml")}
    in_chart = {p.name: p.read_text() for p in (CHART / "crds").iterdir()}
    assert len(generated) == len(ALL_KINDS) == 7
    assert in_chart == generated
    loaded = {Path(c["name"]).name for c in helm.Chart.load(str(CHART)).crds}
    assert loaded == set(generated)
    names = {yaml.safe_load(t)["metadata"]["name"] for t in generated.values()}
    assert names == {f"{k.info.plural}.{GROUP}" for k in ALL_KINDS}


def test_notes_render():
    notes = next(t for p, t in render({"watchNamespaces": ["team-a"]}).items() if p.endswith("NOTES.txt"))
    assert "rollout status deployment/llmops-operator" in notes
    assert "team-a" in notes and "kubectl apply --server-side" in notes
