"""The guardrail runtime: a KServe custom transformer in front of the model's predictor.

`python -m llmops_operator.servers.transformer --model_name N --predictor_host H --http_port P` (KServe
appends those three to the container's args). Per instance of a v1 `POST /v1/models/N:predict`: pick the prompt
version (the x-llmops-prompt-version header when it names a routed version, else sticky header or weighted
random) and render its template, check the prompt with the policy (blocked:
no model call; redacted: the redacted prompt is sent), call the predictor's `/openai/v1/completions` with the
version's parameters, check the output, and count everything in Prometheus (served on /metrics).

Errors reach the client with a status that says whose fault they are: a malformed request or instance is 400; a
4xx from the predictor (a prompt longer than the model's context, a parameter it cannot honour) is passed on with
the same status and the predictor's own message (its first 200 characters, withheld when it quotes the
prompt, so prompts never reach clients' error bodies or the log); a predictor 503 (still loading) stays 503;
any other predictor failure or an unreadable answer is 502; a predictor that cannot be reached is 503, one that does not answer in
time 504 (servers/predictor_errors).

Configuration comes from the mounted files named by the environment: LLMOPS_GUARDRAIL_POLICY (policy.json, and
LLMOPS_GUARDRAIL_POLICY_ID, the Guardrail it compiles, for the `gen_ai.guardrail.result` events),
LLMOPS_PROMPT_DIR (one directory per prompt version) and LLMOPS_PROMPT_ROUTING (routing.json). Files are re-read
when they change; a policy or release that becomes invalid keeps the last good one serving and says so in the log
and in llmops_guardrail_config_errors. With no good policy ever loaded the model reports not ready (fail-closed).

A text of up to 2,048 characters is scanned in the server (linear passes: milliseconds at worst); a longer one
runs in a pool of worker processes (LLMOPS_SCAN_WORKERS) under a per-request time budget
(LLMOPS_SCAN_TIMEOUT_SECONDS); past it every check of the direction applies its onError (failClosed: the check
hits; failOpen: the text passes and the verdict lists the error). Health, readiness and metrics keep answering
while a worst-case body is being scanned (servers/guardrail_scans).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import time
from typing import Any, Mapping

import httpx
import kserve
from kserve import model_server
from kserve.errors import InferenceError, InvalidInput
from prometheus_client import Gauge

from llmops_operator.guardrails.engine import PolicyFile
from llmops_operator.guardrails.policy import PolicyError
from llmops_operator.guardrails.verdict import ALLOWED, BLOCKED, OUTCOME_ORDER, REDACTED
from llmops_operator.servers import request_metrics as metrics
from llmops_operator.servers import openai_routes, protocol, retrieval as rag
from llmops_operator.servers.guardrail_scans import ScanPool, request_id_of
from llmops_operator.servers.predictor_errors import (
    PredictorError, predictor_error_handler, predictor_failure, unreachable, without_prompt,
)
from llmops_operator.servers.prompt_routing import MountedPrompts, PromptError, allowed_parameters

log = logging.getLogger("llmops.guardrails.transformer")

POLICY_ENV = "LLMOPS_GUARDRAIL_POLICY"
POLICY_ID_ENV = "LLMOPS_GUARDRAIL_POLICY_ID"
PROMPT_DIR_ENV = "LLMOPS_PROMPT_DIR"
PROMPT_ROUTING_ENV = "LLMOPS_PROMPT_ROUTING"
MAX_BYTES_ENV = "LLMOPS_MAX_REQUEST_BYTES"
DEFAULT_MAX_BYTES = 1 << 20
SCAN_TIMEOUT_ENV = "LLMOPS_SCAN_TIMEOUT_SECONDS"
DEFAULT_SCAN_TIMEOUT = 2.0
SCAN_WORKERS_ENV = "LLMOPS_SCAN_WORKERS"
DEFAULT_SCAN_WORKERS = 2
COMPLETIONS_PATH = "/v1/completions"
PREDICTOR_PREFIX_ENV = "LLMOPS_PREDICTOR_PATH_PREFIX"
"""Where the predictor's OpenAI routes live: /openai for KServe's Hugging Face runtime (the default); empty for
vLLM's own server, and /<namespace>/<name> behind an LLMInferenceService's gateway route."""
DEFAULT_PREDICTOR_PREFIX = "/openai"

CONFIG_ERRORS = Gauge("llmops_guardrail_config_errors",
                      "1 while a mounted file (policy or prompts) cannot be loaded and the last good one serves.",
                      ["file"])


def strictest(*outcomes: str | None) -> str:
    present = [o for o in outcomes if o]
    return max(present, key=OUTCOME_ORDER.index) if present else ALLOWED


def decode_json(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise protocol.RequestError(f"body: not JSON: {err}") from None


class GuardrailTransformer(kserve.Model):
    def __init__(self, name: str, policy: PolicyFile | None = None, prompts: MountedPrompts | None = None,
                 rng: random.Random | None = None, timeout: float = 600.0,
                 scan_timeout: float = DEFAULT_SCAN_TIMEOUT, scan_workers: int = DEFAULT_SCAN_WORKERS,
                 policy_id: str = "", retriever: rag.Retriever | None = None):
        super().__init__(name)
        self.retriever = retriever
        self.policy = policy
        self.prompts = prompts
        self.rng = rng or random.Random()
        self.timeout = timeout
        self.scans = ScanPool(policy, scan_timeout, scan_workers, policy_id) if policy else None
        self._client: httpx.AsyncClient | None = None
        self._reported: dict[str, str | None] = {}

    def load(self) -> bool:
        if self.scans is not None:
            self.scans.start()
        if self.retriever is not None:
            self.retriever.load()
        self.ready = True
        return self.ready

    async def healthy(self) -> bool:
        """Ready once a policy (when one is configured) and a prompt release (when mounted) have loaded."""
        try:
            self._guardrail_ready()
            if self.prompts:
                self.prompts.release()
        except (OSError, PolicyError, PromptError, re.error) as err:
            log.warning("not ready: %s", err)
            return False
        return self.ready

    def _guardrail_ready(self) -> None:
        if self.policy:
            self.policy.guardrail()
            self._report("policy", self.policy.last_error)

    def _report(self, file: str, error: str | None) -> None:
        """Log a configuration error once when it appears and once when it clears."""
        if self._reported.get(file) != error:
            if error:
                log.error("%s file invalid, serving the last good one: %s", file, error)
            elif file in self._reported:
                log.info("%s file loaded again", file)
            self._reported[file] = error
        CONFIG_ERRORS.labels(file=file).set(1 if error else 0)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            config = self.predictor_config
            if config is None or not config.predictor_host:
                raise InferenceError("--predictor_host is not set: the transformer has no model to call")
            scheme = "https" if config.use_ssl else "http"
            prefix = os.environ.get(PREDICTOR_PREFIX_ENV, DEFAULT_PREDICTOR_PREFIX).rstrip("/")
            self._client = httpx.AsyncClient(base_url=f"{scheme}://{config.predictor_host}{prefix}",
                                             timeout=self.timeout)
        return self._client

    async def preprocess(self, payload: Any, headers: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Validate every instance and render its prompt; any malformed instance fails the request with 400."""
        release = self._release()
        try:
            if isinstance(payload, (bytes, str)):  # a body sent without a JSON content type
                payload = decode_json(payload)
            instances = protocol.parse_request(payload, templated=release is not None)
        except protocol.RequestError as err:
            raise InvalidInput(str(err)) from None
        jobs = []
        for index, instance in enumerate(instances):
            if release is None:
                jobs.append({"prompt": instance.prompt, "version": metrics.NO_VERSION,
                             "parameters": [instance.parameters]})
                continue
            version = release.pick(headers or {}, self.rng)
            try:
                prompt, retrieved = await rag.render_instance(self, version, instance.variables, headers or {})
            except PromptError as err:
                raise InvalidInput(f"instances[{index}].{err} (prompt version {version.version})") from None
            jobs.append({"prompt": prompt, "version": version.version, "retrieval": retrieved,
                         "parameters": [version.parameters, allowed_parameters(instance.parameters, version)]})
        return jobs

    def _release(self) -> Any:
        if self.prompts is None:
            return None
        release = self.prompts.release()
        self._report("prompts", self.prompts.last_error)
        return release

    async def predict(self, payload: list[dict[str, Any]], headers: Mapping[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
        return [await self._serve(job, headers or {}) for job in payload]

    async def postprocess(self, result: Any, headers: Mapping[str, str] | None = None,
                          response_headers: dict[str, str] | None = None) -> dict[str, Any]:
        return {"predictions": result}

    async def _check(self, text: str, direction: str, request_id: str) -> Any:
        if self.scans is None:
            return None
        verdict = await self.scans.check(text, direction, request_id)
        self._report("policy", self.policy.last_error)
        return verdict

    async def _serve(self, job: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        started = time.perf_counter()
        version, prompt = job["version"], job["prompt"]
        try:
            prediction, outcome = await self._guarded_completion(job, headers)
        except InferenceError:
            metrics.REQUESTS.labels(version=version, outcome="error").inc()
            raise
        metrics.REQUESTS.labels(version=version, outcome=outcome).inc()
        metrics.PROMPT_LENGTH.observe(len(prompt))
        metrics.LATENCY.observe(time.perf_counter() - started)
        return rag.annotate(prediction, job)

    async def _guarded_completion(self, job: dict[str, Any], headers: Mapping[str, str]) -> tuple[dict, str]:
        version, request_id = job["version"], request_id_of(headers)
        shown = {"detail": self.scans.verdict_detail if self.scans else None, "request_id": request_id}
        if (refused := rag.blocked_by_retrieval(job, shown)) is not None:
            return refused, BLOCKED
        checked_in = await self._check(job["prompt"], "input", request_id)
        if checked_in is not None and checked_in.outcome == BLOCKED:
            return protocol.blocked_prediction(version, checked_in, **shown), BLOCKED
        sent = checked_in.text if checked_in is not None and checked_in.outcome == REDACTED else job["prompt"]
        text, usage = await self._complete(sent, job["parameters"], headers, request_id)
        metrics.count_tokens(version, usage["promptTokens"], usage["completionTokens"])
        metrics.OUTPUT_LENGTH.observe(len(text))
        checked_out = await self._check(text, "output", request_id)
        outcome = strictest(checked_in and checked_in.outcome, checked_out and checked_out.outcome)
        if checked_out is not None and checked_out.outcome == BLOCKED:
            return protocol.blocked_prediction(version, checked_in, checked_out, usage, **shown), outcome
        if checked_out is not None and checked_out.outcome == REDACTED:
            text = checked_out.text
        return protocol.served_prediction(text, version, checked_in, checked_out, usage, **shown), outcome

    async def _complete(self, prompt: str, parameters: list[Mapping[str, Any]], headers: Mapping[str, str],
                        request_id: str) -> tuple[str, dict[str, int]]:
        body = protocol.completion_request(self.name, prompt, *parameters)
        forwarded = {k: v for k, v in headers.items() if k.lower() == "traceparent"}
        forwarded["x-request-id"] = request_id
        try:
            response = await self.client.post(COMPLETIONS_PATH, json=body, headers=forwarded)
        except httpx.HTTPError as err:
            raise unreachable(err, self.client.base_url, self.timeout) from None
        if response.status_code != 200:
            raise predictor_failure(response, prompt)
        try:
            return protocol.completion_result(response.json())
        except ValueError as err:  # json.JSONDecodeError is a ValueError
            raise PredictorError(f"predictor answered 200 with an unreadable completion: "
                                 f"{without_prompt(str(err), prompt)}", 502) from None


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is answered 413 before any handler reads it."""

    def __init__(self, app: Any, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._too_large(send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.limit:
                return await self._too_large(send)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Any) -> None:
        payload = f'{{"error": "request body larger than {self.limit} bytes"}}'.encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(parents=[model_server.parser], description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=os.environ.get(POLICY_ENV), help="policy.json (default $%s)" % POLICY_ENV)
    parser.add_argument("--policy_id", default=os.environ.get(POLICY_ID_ENV, ""),
                        help="the Guardrail the policy belongs to, as guardrail events name it (default $%s)"
                        % POLICY_ID_ENV)
    parser.add_argument("--prompt_dir", default=os.environ.get(PROMPT_DIR_ENV),
                        help="directory of prompt versions (default $%s)" % PROMPT_DIR_ENV)
    parser.add_argument("--prompt_routing", default=os.environ.get(PROMPT_ROUTING_ENV),
                        help="routing.json (default $%s)" % PROMPT_ROUTING_ENV)
    parser.add_argument("--max_request_bytes", type=int, default=int(os.environ.get(MAX_BYTES_ENV, DEFAULT_MAX_BYTES)))
    parser.add_argument("--scan_timeout_seconds", type=float,
                        default=float(os.environ.get(SCAN_TIMEOUT_ENV, DEFAULT_SCAN_TIMEOUT)),
                        help="time budget of one guardrail scan; past it each check applies its onError")
    parser.add_argument("--scan_workers", type=int, default=int(os.environ.get(SCAN_WORKERS_ENV, DEFAULT_SCAN_WORKERS)),
                        help="worker threads that run guardrail scans")
    return parser


def build_model(args: argparse.Namespace) -> GuardrailTransformer:
    if bool(args.prompt_dir) != bool(args.prompt_routing):
        raise SystemExit(f"{PROMPT_DIR_ENV} and {PROMPT_ROUTING_ENV} go together: set both or neither")
    prompts = MountedPrompts(args.prompt_dir, args.prompt_routing) if args.prompt_dir else None
    policy = PolicyFile(args.policy) if args.policy else None
    return GuardrailTransformer(args.model_name, policy=policy, prompts=prompts,
                                retriever=rag.from_environment(with_prompts=prompts is not None),
                                timeout=args.predictor_request_timeout_seconds,
                                scan_timeout=args.scan_timeout_seconds, scan_workers=args.scan_workers,
                                policy_id=args.policy_id)


def main(argv: list[str] | None = None) -> None:
    args, _ = argument_parser().parse_known_args(argv)
    model = build_model(args)
    model.load()
    model_server.app.add_middleware(BodyLimit, limit=args.max_request_bytes)
    # KServe answers every InferenceError with 500; the handler of the subclass comes first.
    model_server.app.add_exception_handler(PredictorError, predictor_error_handler)
    model_server.app.add_exception_handler(rag.RetrievalError, rag.error_handler)
    openai_routes.install(model_server.app, model, predictor_failure, unreachable)
    kserve.ModelServer().start([model])


if __name__ == "__main__":
    main()
