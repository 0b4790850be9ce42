"""One small interface over DeepSpeed and plain DDP, so the training loop reads the same for both."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _unwrapped(model: Any) -> Any:
    return getattr(model, "module", model)


def model_inputs(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    """The forward arguments of a training batch. No KV cache: transformers reads restarts in position_ids as
    boundaries between packed sequences only when there is no cache and no attention_mask, and a model whose
    config says use_cache would otherwise build one even in training, letting packed sequences attend to each other."""
    return {**{key: value.to(device) for key, value in batch.items()}, "use_cache": False}


def _save_pretrained(model: Any, directory: Path, tokenizer: Any, merge: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    model = _unwrapped(model)
    if merge and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))


def load_checkpoint_file(path: Any, map_location: Any = None, allowed: list[Any] = ()) -> Any:
    """A checkpoint file's tensors and plain data, never arbitrary objects: a checkpoint is data on a shared
    volume, and unpickling whatever its writer put there would run their code. `allowed`: the few classes
    of the engine's own that its checkpoints hold (torch refuses every other global)."""
    import torch

    with torch.serialization.safe_globals(list(allowed)):
        return torch.load(path, map_location=map_location, weights_only=True)


def deepspeed_checkpoint_classes() -> list[Any]:
    """What DeepSpeed's engine and ZeRO optimizer checkpoints hold besides tensors and plain data."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaleConfig, LossScaleProfile, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, DynamicLossScaler, LossScaleConfig, LossScaleProfile, ZeroStageEnum, fragment_address]


class DeepSpeedEngine:
    """DeepSpeed's engine: ZeRO partitioning, offload and precision come from the rendered config."""

    def __init__(self, model: Any, config: dict[str, Any], compile_model: bool = False):
        import deepspeed

        trainable = [p for p in model.parameters() if p.requires_grad]
        self.engine, *_ = deepspeed.initialize(model=model, model_parameters=trainable, config=config)
        if compile_model:
            self.engine.compile()

    def forward_loss(self, batch: dict[str, Any], train: bool = True) -> Any:
        """Mean loss of a batch of input_ids and labels (and position_ids for packed sequences)."""
        self.engine.train(train)
        return self.engine(**model_inputs(batch, self.engine.device)).loss

    def forward_logits(self, batch: dict[str, Any], train: bool = True) -> Any:
        """Logits of a batch of input_ids and attention_mask (labels, if any, are left out of the forward)."""
        self.engine.train(train)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return self.engine(**model_inputs(inputs, self.engine.device)).logits

    @property
    def module(self) -> Any:
        return self.engine.module

    @property
    def device(self) -> Any:
        return self.engine.device

    def backward(self, loss: Any) -> None:
        self.engine.backward(loss)

    def step(self) -> None:
        self.engine.step()  # steps the optimizer only at a gradient-accumulation boundary

    def save_checkpoint(self, directory: Path, tag: str, state: dict[str, Any]) -> None:
        self.engine.save_checkpoint(str(directory), tag=tag, client_state=state)

    def load_checkpoint(self, directory: Path, tag: str) -> dict[str, Any]:
        allowed = deepspeed_checkpoint_classes()
        # DeepSpeed's own loader unpickles with weights_only=False; every file it reads goes through ours instead.
        self.engine.checkpoint_engine.load = lambda path, map_location=None: load_checkpoint_file(
            path, map_location, allowed)
        _, state = self.engine.load_checkpoint(str(directory), tag=tag)
        return state or {}

    def save_pretrained(self, directory: Path, tokenizer: Any, merge: bool = False) -> None:
        _save_pretrained(self.engine.module, directory, tokenizer, merge)


class DdpEngine:
    """torch DistributedDataParallel through Ray Train, with AdamW and manual accumulation."""

    def __init__(self, model: Any, training: dict[str, Any], fused: bool = False, compile_model: bool = False):
        import ray.train.torch
        import torch

        self.model = ray.train.torch.prepare_model(model)
        if compile_model:
            self.model = torch.compile(self.model)
        self.optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                           lr=training.get("learningRate", 3e-4), fused=fused or None)
        self.accumulation = training.get("gradientAccumulationSteps", 1)
        self._micro = 0

    def forward_loss(self, batch: dict[str, Any], train: bool = True) -> Any:
        self.model.train(train)
        return self.model(**model_inputs(batch, self.device)).loss

    def forward_logits(self, batch: dict[str, Any], train: bool = True) -> Any:
        self.model.train(train)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return self.model(**model_inputs(inputs, self.device)).logits

    @property
    def module(self) -> Any:
        return _unwrapped(self.model)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def backward(self, loss: Any) -> None:
        (loss / self.accumulation).backward()

    def step(self) -> None:
        self._micro += 1
        if self._micro % self.accumulation == 0:
            self.optimizer.step()
            self.optimizer.zero_grad()

    def save_checkpoint(self, directory: Path, tag: str, state: dict[str, Any]) -> None:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized() or dist.get_rank() == 0:
            target = directory / tag
            target.mkdir(parents=True, exist_ok=True)
            torch.save({"model": _unwrapped(self.model).state_dict(), "optimizer": self.optimizer.state_dict(),
                        "client_state": state}, target / "state.pt")

    def load_checkpoint(self, directory: Path, tag: str) -> dict[str, Any]:
        saved = load_checkpoint_file(directory / tag / "state.pt")
        _unwrapped(self.model).load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        return saved["client_state"]

    def save_pretrained(self, directory: Path, tokenizer: Any, merge: bool = False) -> None:
        _save_pretrained(self.model, directory, tokenizer, merge)
