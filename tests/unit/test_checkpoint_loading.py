"""Checkpoints are loaded as data: tensors and the engines' own state classes, never arbitrary objects."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")

from llmops_operator.entrypoints.engines import load_checkpoint_file  # noqa: E402


class Payload:
    """What a hostile writer puts in a checkpoint: unpickling it calls os.getpid (could be anything)."""

    def __reduce__(self):
        return (os.getpid, ())


def test_tensors_and_plain_state_load(tmp_path):
    path = tmp_path / "state.pt"
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "client_state": {"step": 4}}, path)
    saved = load_checkpoint_file(path)
    assert saved["client_state"] == {"step": 4}
    assert torch.equal(saved["model"]["weight"], model.state_dict()["weight"])


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "state.pt"
    torch.save({"model": {}, "client_state": Payload()}, path)
    with pytest.raises(Exception, match="(?i)weights only load failed|unsupported global"):
        load_checkpoint_file(path)


def test_deepspeeds_own_state_classes_load_and_nothing_else(tmp_path):
    pytest.importorskip("deepspeed")
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    from llmops_operator.entrypoints.engines import deepspeed_checkpoint_classes

    path = tmp_path / "optim_states.pt"
    torch.save({"loss_scaler": LossScaler(1.0), "zero_stage": ZeroStageEnum.gradients,
                "address": fragment_address(numel=4, start=0), "state": torch.zeros(2)}, path)
    saved = load_checkpoint_file(path, allowed=deepspeed_checkpoint_classes())
    assert saved["zero_stage"] == ZeroStageEnum.gradients and saved["address"].numel == 4
    with pytest.raises(Exception, match="(?i)weights only load failed|unsupported global"):
        load_checkpoint_file(path)  # the same file without the engine's allowlist
