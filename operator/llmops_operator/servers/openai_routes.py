"""OpenAI-compatible endpoints of the guardrail runtime: `/v1/chat/completions`, `/v1/completions`, `/v1/models`.

Each request: parse (400 naming the field), pick and render the prompt version when a release is mounted, check
every input text with the policy (blocked: 400 `content_policy_violation`, the model is not called; redacted: the
redacted text is sent), then stream from the predictor's OpenAI route (`/openai/v1/chat/completions` or
`/openai/v1/completions`, always with `stream: true`) through a StreamGuard that holds back the policy's window.
A streamed answer is relayed as server-sent events; a non-streamed one is the same stream gathered. Blocked
output ends a stream with an error event (a non-streamed answer: 200 with finish_reason `content_filter`).

One chunk is read from the predictor only after the previous one was written to the client, so a slow client
slows the predictor's stream rather than filling memory; a client that goes away cancels the response, which
closes the predictor's connection, and the predictor stops generating.
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator, Callable, Mapping

import anyio
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from llmops_operator.guardrails.verdict import BLOCKED, OUTCOME_ORDER, REDACTED
from llmops_operator.observability import tracing
from llmops_operator.servers import genai_telemetry as genai
from llmops_operator.servers import openai_protocol as oa
from llmops_operator.servers import request_metrics as metrics
from llmops_operator.servers.guardrail_scans import request_id_of
from llmops_operator.servers.prompt_routing import PromptError
from llmops_operator.servers.retrieval import RetrievalError, retrieve, with_context
from llmops_operator.servers.protocol import DEFAULT_PARAMETERS
from llmops_operator.servers.served_models import ServedModels
from llmops_operator.servers.stream_guard import StreamGuard, guard_window

PREDICTOR_PATHS = {oa.CHAT: "/v1/chat/completions", oa.COMPLETIONS: "/v1/completions"}
"""Below the predictor's path prefix (servers/transformer.py PREDICTOR_PREFIX_ENV)."""
FORWARDED_HEADERS = ("x-request-id", "traceparent")


def _error(err: oa.OpenAIError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)


def _strictest(*outcomes: str | None) -> str:
    return max((o for o in outcomes if o), key=OUTCOME_ORDER.index, default="allowed")


class Exchange:
    """One request's state from parsing to the last chunk: what was sent, what came back, and the verdicts."""

    def __init__(self, request: oa.OpenAIRequest, version: str, window: int, check: Any, model: str,
                 parameters: Mapping[str, Any]):
        self.request, self.version, self.model = request, version, model
        self.ident = oa.new_id(request.kind)
        self.started = time.perf_counter()
        self.first_token: float | None = None
        self.operation = genai.operation_of(request.kind)
        self.span = genai.start_span(self.operation, model, parameters, request.stream)
        self.input_outcome: str | None = None
        self.guard = StreamGuard(check, window)
        self.usage = oa.usage_body(0, 0)
        self.finish: str | None = None
        self.prompt_chars = 0
        self.extension: dict[str, Any] | None = None
        """The `llmops` field of the response (the chunks a retrieval used), when there is one."""

    async def take(self, event: Mapping[str, Any]) -> str:
        """The text of one predictor event that may be sent now."""
        usage = event.get("usage")
        if isinstance(usage, dict):
            self.usage = oa.usage_body(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        text, finish = oa.event_text(event)
        self.finish = finish or self.finish
        if text and self.first_token is None:
            self.first_token = time.perf_counter()
        return await self.guard.feed(text) if text else ""

    def close_span(self, outcome: str, error_type: str | None = None) -> None:
        genai.finish(self.span, operation=self.operation, model=self.model, response_id=self.ident,
                     finish_reason=self.finish, usage=self.usage, started=self.started, first_token=self.first_token,
                     ended=time.perf_counter(), outcome=outcome, version=self.version, error_type=error_type)


class OpenAIRoutes:
    def __init__(self, model: Any, refused: Callable[[httpx.Response, str], Any],
                 unreachable: Callable[[httpx.HTTPError, Any, float], Any]):
        self.model, self.refused, self.unreachable = model, refused, unreachable
        self.served = ServedModels(model.name)

    async def models(self) -> JSONResponse:
        """OpenAI's model list (the base model, then its LoRA adapters), with KServe v1's `models` beside it (the
        same path in both protocols; `:predict` serves the base model only)."""
        names = await self.served.names(self.model.client)
        entries = [{"id": name, "object": "model", "created": 0, "owned_by": "llmops",
                    **({"parent": self.model.name} if name != self.model.name else {})} for name in names]
        return JSONResponse({"object": "list", "data": entries, "models": [self.model.name]})

    async def chat(self, request: Request) -> Any:
        return await self._serve(request, oa.parse_chat)

    async def completions(self, request: Request) -> Any:
        return await self._serve(request, oa.parse_completion)

    async def _serve(self, request: Request, parse: Any) -> Any:
        try:
            if not await self.model.healthy():
                raise oa.OpenAIError("the service is not ready", status=503, kind="server_error")
            try:
                parsed = parse(await request.json())
            except ValueError as err:
                raise err if isinstance(err, oa.OpenAIError) else oa.OpenAIError(f"body: not JSON: {err}", "body")
            if not await self.served.serves(self.model.client, parsed.model):
                served = ", ".join(map(repr, await self.served.names(self.model.client)))
                raise oa.OpenAIError(f"model: this service serves {served}", "model", 404, code="model_not_found")
            exchange, body = await self._prepare(parsed, request.headers)
        except oa.OpenAIError as err:
            return _error(err)
        if body is None:
            metrics.REQUESTS.labels(version=exchange.version, outcome=BLOCKED).inc()
            exchange.close_span(BLOCKED)
            return _error(oa.OpenAIError(oa.BLOCKED_MESSAGE, code=oa.CONTENT_POLICY))
        forwarded = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS}
        upstream = await self._open(parsed.kind, body, forwarded, exchange)
        if isinstance(upstream, JSONResponse):
            return upstream
        if parsed.stream:
            return ClosingStreamingResponse(self._relay(upstream, exchange), media_type="text/event-stream",
                                     headers={"cache-control": "no-cache"})
        return await self._gather(upstream, exchange)

    async def _prepare(self, parsed: oa.OpenAIRequest, headers: Mapping[str, str]) -> tuple[Exchange, dict | None]:
        """The exchange and the predictor's body; body None when the input is blocked."""
        policy, scans, request_id = self.model.policy, self.model.scans, request_id_of(headers)
        retrieved = await self._retrieve(parsed, request_id)
        messages, prompt, version, parameters = self._render(parsed, headers, retrieved)

        async def check(text: str, final: bool) -> Any:
            return await scans.check(text, "output", request_id, record=final)
        merged = _merged(parameters)
        # With no output check there is nothing to hold back for: the stream passes through as it comes.
        window = guard_window(policy.guardrail()) if policy and scans is not None else 0
        checks_output = window > 0 or (policy is not None and bool(policy.guardrail().plans["output"].checks))
        exchange = Exchange(parsed, version, window, check if scans is not None and checks_output else None,
                            parsed.model, merged)
        if retrieved is not None:
            exchange.extension = {"retrieval": retrieved.extension()}
            if retrieved.blocked is not None:
                exchange.input_outcome = BLOCKED
                return exchange, None
        texts = [content for _, content in messages] if parsed.kind == oa.CHAT else [prompt]
        checked = []
        for text in texts:
            verdict = await self.model._check(text, "input", request_id)
            exchange.input_outcome = _strictest(exchange.input_outcome, verdict and verdict.outcome)
            checked.append(verdict.text if verdict is not None and verdict.outcome == REDACTED else text)
        if exchange.input_outcome == BLOCKED:
            return exchange, None
        exchange.prompt_chars = sum(len(t) for t in checked)
        body: dict[str, Any] = {"model": parsed.model, "stream": True, "stream_options": {"include_usage": True},
                                "max_tokens": merged["maxTokens"], "temperature": merged["temperature"]}
        if merged.get("topP") is not None:
            body["top_p"] = merged["topP"]
        if merged.get("stop"):
            body["stop"] = list(merged["stop"])
        if parsed.kind == oa.CHAT:
            body["messages"] = [{"role": role, "content": text} for (role, _), text in zip(messages, checked)]
        else:
            body["prompt"] = checked[0]
        return exchange, body

    async def _retrieve(self, parsed: oa.OpenAIRequest, request_id: str) -> Any:
        """The chunks retrieved for the request's query (servers/retrieval.py), or None without spec.retrieval."""
        try:
            return await retrieve(self.model, parsed.variables, request_id)
        except RetrievalError as err:
            kind = "invalid_request_error" if err.status < 500 else "server_error"
            raise oa.OpenAIError(str(err), err.param, err.status, kind=kind) from None

    def _render(self, parsed: oa.OpenAIRequest, headers: Mapping[str, str],
                retrieved: Any = None) -> tuple[list, str | None, str, list]:
        """(messages, prompt, version, parameter sets) after the prompt release, when one is mounted."""
        release = self.model._release()
        own = [(m.role, m.content) for m in parsed.messages]
        if release is None:
            if parsed.variables is not None:
                raise oa.OpenAIError("variables: no prompt release is attached to this service", "variables")
            return own, parsed.prompt, metrics.NO_VERSION, [parsed.parameters]
        version = release.pick(headers, self.model.rng)
        if parsed.kind == oa.COMPLETIONS and parsed.prompt is not None:
            raise oa.OpenAIError("prompt: this service renders its prompt release; send 'variables'", "prompt")
        try:
            values = parsed.variables or {}
            if retrieved is not None:
                values = with_context(values, version.expected, retrieved)
            if parsed.kind == oa.CHAT:
                return (version.render_messages(values) + own, None, version.version,
                        [version.parameters, parsed.parameters])
            return [], version.render(values), version.version, [version.parameters, parsed.parameters]
        except PromptError as err:
            raise oa.OpenAIError(f"{err} (prompt version {version.version})", "variables") from None
        except ValueError as err:  # the version cannot take the retrieved context: the service is misconfigured
            raise oa.OpenAIError(f"{err} (prompt version {version.version})", status=500,
                                 kind="server_error") from None

    async def _open(self, kind: str, body: dict, headers: dict, exchange: Exchange) -> Any:
        """The predictor's streaming response, or the client's error response when it cannot be opened."""
        client: httpx.AsyncClient = self.model.client
        try:
            upstream = await client.send(client.build_request("POST", PREDICTOR_PATHS[kind], json=body,
                                                              headers=headers), stream=True)
        except httpx.HTTPError as err:
            return self._failed(self.unreachable(err, client.base_url, self.model.timeout), exchange)
        if upstream.status_code != 200:
            await upstream.aread()
            await upstream.aclose()
            sent = body.get("prompt") or "\n".join(m["content"] for m in body.get("messages", []))
            return self._failed(self.refused(upstream, sent), exchange)
        return upstream

    def _failed(self, err: Any, exchange: Exchange) -> JSONResponse:
        metrics.REQUESTS.labels(version=exchange.version, outcome="error").inc()
        exchange.close_span("error", f"http_{err.http_status}")
        kind = "invalid_request_error" if err.http_status < 500 else "server_error"
        return JSONResponse(oa.error_body(str(err), kind), status_code=err.http_status)

    async def _events(self, upstream: httpx.Response, exchange: Exchange) -> AsyncIterator[str]:
        """Text the guard releases, piece by piece; stops at a block. Always closes the predictor's stream."""
        try:
            async for line in upstream.aiter_lines():
                event = oa.upstream_event(line)
                piece = await exchange.take(event) if event is not None else ""
                if exchange.guard.blocked:
                    return
                if piece:
                    yield piece
            rest = await exchange.guard.finish()
            if rest:
                yield rest
        finally:
            await upstream.aclose()

    async def _relay(self, upstream: httpx.Response, exchange: Exchange) -> AsyncIterator[str]:
        kind, ident, name = exchange.request.kind, exchange.ident, exchange.model
        outcome, error_type = "error", "cancelled"
        try:
            async for piece in self._events(upstream, exchange):
                yield oa.chunk(kind, ident, name, piece)
            if exchange.guard.blocked:
                yield oa.sse(oa.error_body(oa.OUTPUT_BLOCKED_MESSAGE, "content_filter", code=oa.CONTENT_POLICY))
                outcome, error_type = BLOCKED, None
                return
            yield oa.chunk(kind, ident, name, None, exchange.finish or "stop", extension=exchange.extension)
            if exchange.request.include_usage:
                yield oa.chunk(kind, ident, name, None, usage=exchange.usage)
            yield oa.DONE
            outcome, error_type = _strictest(exchange.input_outcome, exchange.guard.outcome), None
        except (httpx.HTTPError, ValueError) as err:
            error_type = type(err).__name__
            yield oa.sse(oa.error_body(f"the predictor's stream broke off: {err}", "server_error"))
        finally:
            await upstream.aclose()
            self._record(exchange, outcome, error_type)

    async def _gather(self, upstream: httpx.Response, exchange: Exchange) -> JSONResponse:
        outcome = "error"
        try:
            text = "".join([piece async for piece in self._events(upstream, exchange)])
        except (httpx.HTTPError, ValueError) as err:
            self._record(exchange, outcome, type(err).__name__)
            return JSONResponse(oa.error_body(f"the predictor's stream broke off: {err}", "server_error"), 502)
        blocked = exchange.guard.blocked
        outcome = BLOCKED if blocked else _strictest(exchange.input_outcome, exchange.guard.outcome)
        self._record(exchange, outcome)
        return JSONResponse(oa.response(exchange.request.kind, exchange.ident, exchange.model, "" if blocked else text,
                                        "content_filter" if blocked else exchange.finish or "stop", exchange.usage,
                                        exchange.version, exchange.extension))

    def _record(self, exchange: Exchange, outcome: str, error_type: str | None = None) -> None:
        exchange.close_span(outcome, error_type)
        version = exchange.version
        metrics.REQUESTS.labels(version=version, outcome=outcome).inc()
        if exchange.guard.blocked:  # stopped mid-stream: the final check that counts hits never ran
            metrics.count_hits(exchange.guard.verdict)
        prompt_tokens, completion_tokens = exchange.usage["prompt_tokens"], exchange.usage["completion_tokens"]
        metrics.count_tokens(version, prompt_tokens, completion_tokens)
        metrics.count_model(exchange.model, outcome, prompt_tokens, completion_tokens)
        metrics.PROMPT_LENGTH.observe(exchange.prompt_chars)
        metrics.OUTPUT_LENGTH.observe(len(exchange.guard.text))
        metrics.LATENCY.observe(time.perf_counter() - exchange.started)


class ClosingStreamingResponse(StreamingResponse):
    """Closes its body generator however the response ends: when the client goes away the generator is left
    suspended, and its `finally` (which closes the predictor's connection) would otherwise wait for the GC."""

    async def stream_response(self, send: Any) -> None:
        try:
            await super().stream_response(send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()


def _merged(parameter_sets: list[Mapping[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = dict(DEFAULT_PARAMETERS)
    for parameters in parameter_sets:
        merged.update(parameters)
    return merged


def install(app: FastAPI, model: Any, refused: Callable[[httpx.Response, str], Any],
            unreachable: Callable[[httpx.HTTPError, Any, float], Any]) -> None:
    """Add the routes ahead of KServe's own (KServe's `GET /v1/models` list is answered here, in both shapes).
    `refused` (given the text sent, which its message must not quote) and `unreachable` turn a predictor's failure
    into the error the client gets: the transformer's own, so both protocols answer alike."""
    routes = OpenAIRoutes(model, refused, unreachable)
    tracing.configure(None, "llmops-guardrail-transformer")  # spans leave only with an OTLP endpoint set
    app.add_api_route("/v1/models", routes.models, methods=["GET"])
    app.add_api_route("/v1/chat/completions", routes.chat, methods=["POST"])
    app.add_api_route("/v1/completions", routes.completions, methods=["POST"])
