"""The price catalog: the chart's pricing ConfigMap (values.pricing) as a typed model."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _CatalogModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class GpuPrice(_CatalogModel):
    hourly: float = Field(ge=0)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict] = Field(default_factory=list)


class TokenPrice(_CatalogModel):
    input_per1k: float = Field(default=0.0, ge=0, alias="inputPer1k")
    output_per1k: float = Field(default=0.0, ge=0, alias="outputPer1k")


class PriceCatalog(_CatalogModel):
    """Prices per resource-hour; the same keys as the Helm chart's `pricing` values."""

    currency: str = "USD"
    cpu_core_hour: float = Field(default=0.0316, ge=0)
    memory_gi_b_hour: float = Field(default=0.0042, ge=0, alias="memoryGiBHour")
    gpus: dict[str, GpuPrice] = Field(default_factory=dict)
    tokens: dict[str, TokenPrice] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None) -> "PriceCatalog":
        """The catalog from a YAML file; the built-in defaults when no file is configured."""
        if not path:
            return default_catalog()
        return cls.model_validate(yaml.safe_load(Path(path).read_text()) or {})


def default_catalog() -> PriceCatalog:
    """Prices used when no catalog is mounted (the sandbox, `llmops render`): public-cloud-like list prices."""
    return PriceCatalog(gpus={
        "nvidia-h100-80gb": GpuPrice(hourly=4.10, node_selector={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}),
        "nvidia-a100-80gb": GpuPrice(hourly=2.90, node_selector={"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}),
        "nvidia-l4": GpuPrice(hourly=0.80, node_selector={"nvidia.com/gpu.product": "NVIDIA-L4"}),
    }, tokens={"default": TokenPrice()})
