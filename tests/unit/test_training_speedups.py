"""training.speedups: which speed-ups a worker applies, and that each one is really applied to the model or engine."""

import os

import pytest

pytest.importorskip("transformers")
pytest.importorskip("deepspeed")

import torch  # noqa: E402
import transformers  # noqa: E402

from llmops_operator.api.v1alpha1.trainingjob import TrainingJobSpec  # noqa: E402
from llmops_operator.builders.deepspeed import deepspeed_config  # noqa: E402
from llmops_operator.builders.runconfig import _dump  # noqa: E402
from llmops_operator.entrypoints import speedups  # noqa: E402
from llmops_operator.entrypoints.train import _engine  # noqa: E402


def tiny(architecture: str = "llama"):
    torch.manual_seed(0)
    sizes = {"llama": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "num_key_value_heads": 2},
             "gpt2": {"n_embd": 32, "n_layer": 2, "n_head": 4}}[architecture]
    config = transformers.AutoConfig.for_model(architecture, vocab_size=128, **sizes)
    return transformers.AutoModelForCausalLM.from_config(config)


def spec(speedups_spec: dict | None = None, zero_stage: int = 0) -> TrainingJobSpec:
    training = {"batchSize": 2, "learningRate": 1e-3}
    if speedups_spec is not None:
        training["speedups"] = speedups_spec
    return TrainingJobSpec.model_validate({
        "dataset": {"uri": "file:///unused.jsonl"}, "outputUri": "file:///unused",
        "deepspeed": {"zeroStage": zero_stage}, "training": training,
    })


def checkpointing(model) -> bool:
    flag = "is_activation_checkpointing" if hasattr(model, "is_activation_checkpointing") else "is_gradient_checkpointing"
    return getattr(model, flag)


def from_liger(method) -> bool:
    return getattr(method, "__func__", method).__module__.startswith("liger_kernel")


def test_by_default_a_gpu_worker_gets_liger_kernels_and_a_cpu_worker_nothing():
    training = _dump(spec().training)
    assert training["speedups"] == {"ligerKernels": True, "fusedOptimizer": False, "compile": False,
                                    "activationCheckpointing": False}
    assert speedups.chosen(training, on_gpu=True) == {"ligerKernels"}
    assert speedups.chosen(training, on_gpu=False) == frozenset()


def test_every_switch_turned_on_applies_except_gpu_kernels_on_a_cpu_worker():
    training = _dump(spec({"fusedOptimizer": True, "compile": True, "activationCheckpointing": True}).training)
    assert speedups.chosen(training, on_gpu=False) == {"fusedOptimizer", "compile", "activationCheckpointing"}
    assert speedups.chosen(training, on_gpu=True) == {"ligerKernels", "fusedOptimizer", "compile",
                                                       "activationCheckpointing"}
    assert speedups.chosen({}, on_gpu=True) == {"ligerKernels"}, "a run config without the block gets the defaults"


def test_fused_adamw_changes_only_the_torch_optimizer_the_operator_renders():
    rendered = deepspeed_config(spec())
    fused = speedups.fused_adamw(rendered)
    assert fused["optimizer"]["params"] == {**rendered["optimizer"]["params"], "fused": True}
    assert "fused" not in rendered["optimizer"]["params"], "the rendered config is not modified in place"
    raw = {**rendered, "optimizer": {"type": "Lamb", "params": {"lr": 1e-3}}}
    assert speedups.fused_adamw(raw) == raw
    told = {**rendered, "optimizer": {**rendered["optimizer"], "params": {"torch_adam": True, "fused": False}}}
    assert speedups.fused_adamw(told) == told


@pytest.fixture
def llama_module_restored():
    """Liger also patches the architecture's module for the whole process (the rotary embedding there), which is
    right in a worker that trains one model and wrong for the tests after this one, on a CPU."""
    from transformers.models.llama import modeling_llama

    saved = dict(vars(modeling_llama))
    yield
    for name in set(vars(modeling_llama)) - set(saved):
        delattr(modeling_llama, name)
    for name, value in saved.items():
        setattr(modeling_llama, name, value)


def test_liger_replaces_norms_mlps_and_the_loss_of_a_llama_model_even_inside_lora_adapters(llama_module_restored):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny(), LoraConfig(r=4, target_modules=["q_proj", "up_proj"], task_type="CAUSAL_LM"))
    base = speedups.base_model(model)
    assert not from_liger(base.model.norm.forward)
    assert speedups.apply_liger(model)
    assert from_liger(base.model.norm.forward)
    assert all(from_liger(layer.mlp.forward) for layer in base.model.layers)
    assert from_liger(base.forward), "the LM head's fused cross-entropy"


def test_an_architecture_liger_has_no_kernels_for_trains_without_them():
    model = tiny("gpt2")
    assert not speedups.apply_liger(model)
    assert not from_liger(model.forward)


def test_activation_checkpointing_recomputes_and_gives_the_same_gradients():
    ids = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(1))
    gradients = []
    for checkpointed in (False, True):
        model = tiny()
        model.train()
        if checkpointed:
            speedups.checkpoint_activations(model)
            assert checkpointing(model)
        model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
        gradients.append(model.model.layers[0].self_attn.q_proj.weight.grad)
    torch.testing.assert_close(gradients[0], gradients[1])


def test_the_runtime_engine_gets_the_fused_optimizer_and_checkpointing_the_spec_asks_for(monkeypatch):
    for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29561", "RANK": "0", "LOCAL_RANK": "0",
                       "WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(key, os.environ.get(key, value))
    job = spec({"fusedOptimizer": True, "activationCheckpointing": True})
    config = {"training": _dump(job.training), "deepspeed": deepspeed_config(job)}
    engine, applied = _engine(config, tiny())
    assert applied == ["activationCheckpointing", "fusedOptimizer"]
    assert engine.engine.basic_optimizer.defaults["fused"] is True
    assert checkpointing(engine.module)
    ids = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(2))
    before = engine.module.model.layers[0].mlp.up_proj.weight.detach().clone()
    engine.backward(engine.forward_loss({"input_ids": ids, "labels": ids}))
    engine.step()
    assert not torch.equal(before, engine.module.model.layers[0].mlp.up_proj.weight), "the fused step updated weights"
