"""LoRA adapters of an InferenceService, as the predictor receives them (pure).

Two forms, one per runtime:
- The adapters ConfigMap (`<service>-adapters`, key adapters.json: `{"adapters": [{"name", "uri"}]}`), mounted
  into the predictor with LLMOPS_ADAPTERS_FILE naming it. The CPU predictor (servers/predictor.py) polls the file
  and loads or unloads adapters with peft while it runs. The ConfigMap is not part of the KServe object's spec, so
  a changed adapter list rolls nothing: the kubelet refreshes the mounted file in place.
- vLLM's engine arguments (`--enable-lora --max-loras N --max-lora-rank R --lora-modules name=path ...`) for the
  GPU runtime, with each pvc:// adapter's claim mounted read-only. vLLM reads these at start, so there a changed
  list rolls a new predictor revision (KServe keeps the old one serving until the new one is ready).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llmops_operator.api.v1alpha1.inferenceservice import InferenceService
from llmops_operator.builders import labels
from llmops_operator.builders.naming import child_name, short_hash

ADAPTERS_KEY = "adapters.json"
ADAPTERS_DIR = "/etc/llmops/adapters"
ADAPTERS_FILE_ENV = "LLMOPS_ADAPTERS_FILE"
ADAPTERS_COMPONENT = "adapters"
ADAPTER_CLAIMS_DIR = "/mnt/adapters"
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
"""The --max-lora-rank values vLLM accepts."""
VLLM_ADAPTER_SCHEMES = ("pvc://", "hf://")


@dataclass(frozen=True)
class ServedAdapter:
    """An adapter ready to serve: its model name, its storage URI and its LoRA rank."""

    name: str
    uri: str
    rank: int


def adapters_config_map_name(obj: InferenceService) -> str:
    return child_name(obj.name, ADAPTERS_COMPONENT)


def build_adapters_config_map(obj: InferenceService, adapters: list[ServedAdapter]) -> dict[str, Any]:
    """The list the CPU predictor reloads at run time."""
    document = {"adapters": [{"name": a.name, "uri": a.uri} for a in adapters]}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": adapters_config_map_name(obj), "namespace": obj.namespace,
                         "labels": labels.child_labels(obj, ADAPTERS_COMPONENT)},
            "data": {ADAPTERS_KEY: json.dumps(document, indent=1, sort_keys=True)}}


def mount_adapters_file(obj: InferenceService, predictor: dict[str, Any]) -> None:
    """Mount the adapters ConfigMap into the predictor's model container (optional: absent means no adapters)."""
    model = predictor["model"]
    predictor.setdefault("volumes", []).append(
        {"name": "llmops-adapters", "configMap": {"name": adapters_config_map_name(obj), "optional": True}})
    model.setdefault("volumeMounts", []).append(
        {"name": "llmops-adapters", "mountPath": ADAPTERS_DIR, "readOnly": True})
    model.setdefault("env", []).append({"name": ADAPTERS_FILE_ENV, "value": f"{ADAPTERS_DIR}/{ADAPTERS_KEY}"})


def vllm_unsupported(uri: str, rank: int) -> str | None:
    """Why vLLM cannot serve an adapter at `uri` of LoRA rank `rank`, or None when it can."""
    if not uri.startswith(VLLM_ADAPTER_SCHEMES):
        return f"{uri}: the vLLM runtime loads adapters from {' or '.join(VLLM_ADAPTER_SCHEMES)} URIs"
    if rank > VLLM_LORA_RANKS[-1]:
        return f"LoRA rank {rank}: the vLLM runtime serves ranks up to {VLLM_LORA_RANKS[-1]}"
    return None


def _vllm_path(uri: str, claims: dict[str, str]) -> str:
    """Where vLLM finds the adapter: a Hugging Face repository id, or a path under a mounted claim."""
    if uri.startswith("hf://"):
        return uri.removeprefix("hf://")
    claim, _, path = uri.removeprefix("pvc://").partition("/")
    claims.setdefault(claim, f"adapter-claim-{short_hash(claim)}")
    return f"{ADAPTER_CLAIMS_DIR}/{claim}/{path}".rstrip("/")


def lora_engine_args(adapters: list[ServedAdapter]) -> tuple[list[str], dict[str, str]]:
    """(vLLM arguments, claim -> volume name to mount under ADAPTER_CLAIMS_DIR) for `adapters` (URIs vLLM can
    read: check vllm_unsupported first). --max-lora-rank is the smallest rank vLLM accepts that fits the largest."""
    if not adapters:
        return [], {}
    claims: dict[str, str] = {}
    rank = max(a.rank for a in adapters)
    max_rank = next((r for r in VLLM_LORA_RANKS if r >= rank), VLLM_LORA_RANKS[-1])
    args = ["--enable-lora", f"--max-loras={len(adapters)}", f"--max-lora-rank={max_rank}", "--lora-modules",
            *(f"{a.name}={_vllm_path(a.uri, claims)}" for a in adapters)]
    return args, claims


def add_vllm_adapters(predictor: dict[str, Any], adapters: list[ServedAdapter]) -> None:
    """The engine arguments on the model container, and the adapters' claims mounted read-only."""
    args, claims = lora_engine_args(adapters)
    if not args:
        return
    model = predictor["model"]
    model["args"] = [*model.get("args", []), *args]
    for claim, volume in sorted(claims.items()):
        predictor.setdefault("volumes", []).append(
            {"name": volume, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
        model.setdefault("volumeMounts", []).append(
            {"name": volume, "mountPath": f"{ADAPTER_CLAIMS_DIR}/{claim}", "readOnly": True})
