"""An ML engineer's first hour: explain the API, apply the examples, watch them reconcile, fix a mistake."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "manifests" / "examples"

KINDS = ["trainingjobs", "finetunes", "guardrails", "inferenceservices", "promptreleases", "vectorindexes", "featureviews"]


def test_kubectl_explain_reads_the_field_docs(kubectl):
    out = kubectl("explain", "trainingjob.spec.deepspeed").stdout
    assert "zeroStage" in out and "ZeRO stage" in out


def test_short_names_and_the_llmops_category(kubectl, namespace):
    for short in ("tj", "ft", "grail", "lsvc", "prel", "vidx", "fv"):
        kubectl("get", short, "-n", namespace)
    assert "No resources found" in kubectl("get", "llmops", "-n", namespace).stderr


def test_apply_every_example_and_each_is_reconciled(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", str(EXAMPLES))
    for plural in KINDS:
        # Freshly applied objects are at generation 1; observing it means the operator has reconciled them.
        kubectl("wait", "-n", namespace, plural, "--all", "--timeout=120s",
                "--for=jsonpath={.status.observedGeneration}=1")
        for item in kubectl.json("get", plural, "-n", namespace)["items"]:
            ready = next(c for c in item["status"]["conditions"] if c["type"] == "Ready")
            assert ready["reason"] != "InvalidSpec", (item["metadata"]["name"], ready)
    listing = kubectl("get", "llmops", "-n", namespace).stdout
    for header in ("READY", "PHASE", "AGE"):
        assert header in listing
    for plural in KINDS:
        assert kubectl.json("get", plural, "-n", namespace)["items"], f"no {plural} example was applied"


def test_a_prompt_release_serves_its_canary(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "promptrelease.yaml"))
    kubectl("wait", "-n", namespace, "prel/assistant-prompt", "--for=condition=Ready", "--timeout=60s")
    listing = kubectl("get", "prel", "-n", namespace).stdout
    assert "Canary" in listing, listing


def test_guardrail_becomes_ready_and_shows_its_policy(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "guardrail.yaml"))
    name = kubectl.json("get", "guardrails", "-n", namespace)["items"][0]["metadata"]["name"]
    kubectl("wait", "-n", namespace, f"guardrail/{name}", "--for=condition=Ready", "--timeout=60s")
    policy = kubectl.json("get", f"guardrail/{name}", "-n", namespace)["status"]["policyConfigMap"]
    kubectl("get", "configmap", policy, "-n", namespace)


def test_a_mistake_is_refused_with_a_readable_message(kubectl, namespace):
    bad = """
apiVersion: llmops.dev/v1alpha1
kind: TrainingJob
metadata: {name: broken}
spec:
  dataset: {uri: "file:///data/corpus.jsonl"}
  outputUri: file:///models/broken
  resources: {workers: 2, gpusPerWorker: 1}
"""
    result = kubectl("apply", "-n", namespace, "-f", "-", stdin=bad, check=False)
    assert result.returncode != 0
    assert "gpuType is required when gpusPerWorker is above 0" in result.stderr


def test_an_operator_side_mistake_is_reported_in_status(kubectl, namespace):
    bad = """
apiVersion: llmops.dev/v1alpha1
kind: TrainingJob
metadata: {name: unknown-gpu}
spec:
  dataset: {uri: "file:///data/corpus.jsonl"}
  outputUri: file:///models/unknown-gpu
  resources: {workers: 1, gpusPerWorker: 1, gpuType: nvidia-imaginary}
"""
    kubectl("apply", "-n", namespace, "-f", "-", stdin=bad)
    kubectl("wait", "-n", namespace, "tj/unknown-gpu", "--timeout=60s",
            "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=InvalidSpec")
    message = kubectl("get", "tj/unknown-gpu", "-n", namespace,
                      "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}").stdout
    assert "spec.resources.gpuType" in message and "nvidia-imaginary" in message
