"""The operator's settings: one pydantic model, read from LLMOPS_* environment variables."""

from __future__ import annotations

import secrets
from functools import cached_property

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from llmops_operator.core.pricing import PriceCatalog


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMOPS_", extra="ignore")

    pricing_file: str | None = None
    """Price catalog YAML (the chart mounts its pricing ConfigMap here); built-in prices when unset."""
    resync_seconds: float = Field(default=60.0, gt=0)
    """Safety-net timer: every object is reconciled at least this often."""
    log_format: str = "plain"
    """plain or json."""
    runtime_image: str = "ghcr.io/llmops-operator/llmops-operator:0.1.0"
    """Image of the Ray, Job and guardrail pods the operator creates."""
    ray_version: str = "2.52.0"
    """Ray version KubeRay is told the image runs."""
    guardrail_selftest_seconds: float = Field(default=10.0, gt=0)
    """How long a reconcile pass waits for a Guardrail's self-test (run in a worker process, off the event loop);
    past it the pass reports SelfTested=Unknown and a later pass picks the result up."""
    guardrail_worker_idle_seconds: float = Field(default=60.0, gt=0)
    """The Guardrail self-test and spec.evaluation run in a separate process, kept between runs; it is stopped after
    this long without one, which frees the engine's model and corpora (about 50 MB) until the next run."""
    network_policies: bool = True
    """Render NetworkPolicies: Ray pods take traffic only from their own object's pods, a guarded predictor only
    from its transformer, both also from `control_plane_namespaces`."""
    control_plane_namespaces: list[str] = Field(default_factory=lambda: ["kuberay-system"], max_length=16)
    """Namespaces whose pods may reach Ray and predictor pods: KubeRay's operator (it polls the Ray head's dashboard),
    the llmops operator's own, and in KServe's Serverless mode the Knative/ingress namespaces that forward requests."""
    storage_initializer_image: str = "kserve/storage-initializer:v0.20.0"
    """Image of the Job that fills a model cache claim (KServe's storage initializer: every URI scheme KServe reads),
    and of the predictor's init container that waits for it."""
    llm_gateway_address: str = Field(default="kserve-ingress-gateway-istio.kserve.svc.cluster.local", max_length=253)
    """host[:port] of the Gateway KServe binds LLMInferenceService routes to (its IngressGatewayName/Namespace, here
    with Istio's Service name); the guardrail gateway calls `/<namespace>/<name>/v1/...` there."""
    field_manager: str = "llmops-operator"
    """Server-side apply field manager of every child."""
    prometheus_url: str | None = None
    """Prometheus HTTP API (http://prometheus.monitoring:9090) the InferenceService status reads runtime metrics from,
    over the drift window. Unset: the operator scrapes the guardrail transformer's /metrics directly."""
    cleanup_recheck_seconds: float = Field(default=60.0, gt=0)
    """How often a finalizer whose cleanup failed (condition CleanupFailed) looks again: whether the cleanup now
    succeeds, or the object carries llmops.dev/skip-cleanup."""

    evaluation_key: str = Field(default_factory=lambda: secrets.token_hex(32), repr=False)
    """Key of the tokens that let the operator force a PromptRelease candidate during its evaluation. Random per
    process when unset (a restart renews the tokens); set it to share one between replicas."""

    otel_endpoint: str | None = None
    """OTLP endpoint for traces (one span per reconcile and per API request); OTEL_EXPORTER_OTLP_ENDPOINT also
    works. Unset: no traces. Needs opentelemetry-exporter-otlp (the `otlp` extra)."""
    otel_service_name: str = "llmops-operator"
    """service.name of the exported spans."""

    @cached_property
    def catalog(self) -> PriceCatalog:
        return PriceCatalog.load(self.pricing_file)
