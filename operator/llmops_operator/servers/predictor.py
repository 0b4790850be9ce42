"""A small model server with the generation surface of KServe's Hugging Face runtime, for the sandbox.

`python -m llmops_operator.servers.predictor --model_name N --model_dir DIR --http_port P` loads the causal
LM saved in DIR (save_pretrained layout; the tokenizer saved beside it, else builtin:minilm as training uses)
on CPU with transformers and serves:
  POST /openai/v1/completions   {model, prompt, max_tokens, temperature, top_p, stop, stream, stream_options}
                                -> {id, object, created, model, choices[{index, text, finish_reason}], usage}
  POST /openai/v1/chat/completions  the same with messages[{role, content}] for prompt, rendered with the
                                tokenizer's chat template (a plain `role: content` transcript when it has none)
  With `stream: true` both answer server-sent events (see predictor_stream.py), ending with `data: [DONE]`.
  GET  /openai/v1/models        the base model N and every loaded LoRA adapter (predictor_adapters.py), which a
                                request picks with `model`; an unknown `model` is a 404
  GET  /v1/models/N             {"name", "ready"}: 200 once the model is loaded, 503 before
  GET  /                        liveness
  GET  /metrics                 Prometheus
In a cluster KServe's own runtime (vLLM or the transformers backend) serves the same routes. Generation runs
in one worker thread, so the event loop keeps answering readiness probes while a request generates.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from llmops_operator.servers.openai_protocol import CHAT, COMPLETIONS, DONE, chunk, new_id
from llmops_operator.servers.predictor_adapters import ADAPTERS_FILE_ENV, AdaptersFile, AdapterSet
from llmops_operator.servers.predictor_requests import (  # noqa: F401  (the request model lives there)
    MAX_PROMPT_CHARS, BadRequest, Completion, ModelNotFound, parse_completion, parse_messages, shown, truncate_at_stop,
)
from llmops_operator.servers.predictor_stream import StopScanner, StreamState

log = logging.getLogger("llmops.serving.predictor")

REQUESTS = Counter("llmops_predictor_requests", "Completion requests, by HTTP status.", ["status"])
TOKENS = Counter("llmops_predictor_tokens", "Tokens read (prompt) and generated (completion).", ["kind"])
GENERATION_SECONDS = Histogram("llmops_predictor_generation_seconds", "Time spent generating one completion.")
CLIENT_CLOSED = "499"
"""The status label of a streamed request whose client went away (the generation was cancelled)."""


class Generator:
    """A causal LM and its tokenizer, loaded from a save_pretrained directory."""

    def __init__(self, model_dir: Path):
        self.model_dir = model_dir
        self.adapters = AdapterSet()
        self.tokenizer: Any = None

    @property
    def model(self) -> Any:
        return self.adapters.model

    def load(self) -> None:
        import torch
        import transformers

        from llmops_operator.backends.models import BUILTIN_MINILM, load_tokenizer

        has_tokenizer = (self.model_dir / "tokenizer_config.json").is_file()
        self.tokenizer = load_tokenizer(str(self.model_dir) if has_tokenizer else BUILTIN_MINILM)
        self.adapters.model = transformers.AutoModelForCausalLM.from_pretrained(str(self.model_dir),
                                                                                dtype=torch.float32)
        self.adapters.model.eval()

    @property
    def context_length(self) -> int:
        config = self.model.config
        return int(getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", 1024))

    def prompt_text(self, request: Completion) -> str:
        """The prompt, or the chat messages rendered with the tokenizer's chat template (a plain transcript when
        the tokenizer has none)."""
        if request.messages is None:
            return request.prompt
        conversation = [{"role": role, "content": content} for role, content in request.messages]
        template = self.adapters.chat_templates.get(request.adapter or "") or getattr(self.tokenizer, "chat_template",
                                                                                      None)
        if template:  # an adapter renders conversations as its fine-tuning did
            return self.tokenizer.apply_chat_template(conversation, chat_template=template, tokenize=False,
                                                      add_generation_prompt=True)
        return "".join(f"{role}: {content}\n" for role, content in request.messages) + "assistant:"

    def _inputs(self, request: Completion) -> tuple[Any, dict[str, Any]]:
        """The prompt's token ids and the generate() arguments; a prompt that fills the context is a 400."""
        import torch

        where = "messages" if request.messages is not None else "prompt"
        ids = self.tokenizer(self.prompt_text(request), add_special_tokens=False, return_tensors="pt")["input_ids"]
        room = self.context_length - int(ids.shape[1])
        if room < 1:
            raise BadRequest(where, f"{int(ids.shape[1])} tokens leave no room in the model's context of "
                                    f"{self.context_length}")
        sampling = {"do_sample": True, "temperature": request.temperature, "top_p": request.top_p} \
            if request.temperature > 0 else {"do_sample": False}
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        return ids, dict(attention_mask=torch.ones_like(ids), max_new_tokens=min(request.max_tokens, room),
                         min_new_tokens=1, pad_token_id=pad, **sampling)

    def stream(self, request: Completion, state: Any) -> int:
        """Generate into `state` (predictor_stream.StreamState); the prompt's token count. Runs in the worker."""
        import torch

        from llmops_operator.servers.predictor_stream import cancel_criterion, streamer_for

        try:
            ids, arguments = self._inputs(request)
            with torch.no_grad(), self._selected(request) as model:
                model.generate(ids, streamer=streamer_for(self.tokenizer, state),
                               stopping_criteria=cancel_criterion(state), **arguments)
        except BaseException as err:  # handed to the event loop, which answers for it
            state.close(err)
            raise
        state.close()
        return int(ids.shape[1])

    def _selected(self, request: Completion) -> Any:
        """The model with the request's adapter active (it may have been unloaded since the request was parsed)."""
        if request.adapter is not None and request.adapter not in self.adapters.loaded:
            raise ModelNotFound("model", f"adapter {request.adapter!r} is no longer served")
        return self.adapters.selected(request.adapter)

    def generate(self, request: Completion) -> tuple[str, int, int, str]:
        """(text, prompt tokens, completion tokens, finish reason)."""
        import torch

        ids, arguments = self._inputs(request)
        prompt_tokens, max_new = int(ids.shape[1]), arguments["max_new_tokens"]
        with torch.no_grad(), self._selected(request) as model:
            output = model.generate(ids, **arguments)
        new_ids = output[0, prompt_tokens:]
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        text, stopped = truncate_at_stop(text, request.stop)
        finish = "stop" if stopped or len(new_ids) < max_new else "length"
        return text, prompt_tokens, int(len(new_ids)), finish


def completion_response(model_name: str, text: str, prompt_tokens: int, completion_tokens: int,
                        finish: str) -> dict[str, Any]:
    return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": model_name, "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def _error(status: int, message: str, param: str | None = None) -> web.Response:
    REQUESTS.labels(status=str(status)).inc()
    kind = "invalid_request_error" if status < 500 else "server_error"
    return web.json_response({"error": {"message": message, "type": kind, "param": param}}, status=status)


class PredictorServer:
    def __init__(self, model_name: str, generator: Generator, adapters_file: Path | None = None):
        self.model_name = model_name
        self.generator = generator
        self.adapters_file = AdaptersFile(adapters_file, model_name) if adapters_file else None
        self.ready = False
        self.load_error: str | None = None
        # One thread: torch already uses every core for one generation, and the model is not shared safely.
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_PROMPT_CHARS * 4 + 65_536)
        app.router.add_get("/", self.live)
        app.router.add_get(f"/v1/models/{self.model_name}", self.model_ready)
        app.router.add_get("/openai/v1/models", self.models)
        app.router.add_post("/openai/v1/completions", self.completions)
        app.router.add_post("/openai/v1/chat/completions", self.chat_completions)
        app.router.add_get("/metrics", self.metrics)
        app.on_startup.append(self._start_loading)
        app.on_cleanup.append(self._shutdown)
        return app

    async def _start_loading(self, app: web.Application) -> None:
        asyncio.get_running_loop().run_in_executor(self.executor, self._load)
        if self.adapters_file is not None:
            app["adapter_watch"] = asyncio.get_running_loop().create_task(self.adapters_file.watch(
                lambda: self.ready, lambda: asyncio.get_running_loop().run_in_executor(self.executor, self._adapt)))

    def _adapt(self) -> None:
        if self.adapters_file is not None:
            self.adapters_file.apply(self.generator.adapters)

    async def _shutdown(self, _: web.Application) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _load(self) -> None:
        try:
            self.generator.load()
            self._adapt()
            self.ready = True
            log.info("model %s loaded from %s", self.model_name, self.generator.model_dir)
        except (OSError, ValueError, ImportError) as err:
            self.load_error = f"{type(err).__name__}: {err}"
            log.error("cannot load %s: %s", self.generator.model_dir, self.load_error)

    async def models(self, _: web.Request) -> web.Response:
        """OpenAI's model list: the base model, then each loaded adapter (its `parent` the base)."""
        base = {"id": self.model_name, "object": "model", "created": 0, "owned_by": "llmops"}
        adapters = [{**base, "id": name, "parent": self.model_name} for name in self.generator.adapters.names]
        return web.json_response({"object": "list", "data": [base, *adapters] if self.ready else []})

    async def live(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def model_ready(self, _: web.Request) -> web.Response:
        body: dict[str, Any] = {"name": self.model_name, "ready": self.ready}
        if self.load_error:
            body["error"] = self.load_error
        return web.json_response(body, status=200 if self.ready else 503)

    async def metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=False)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=True)

    async def _serve(self, request: web.Request, chat: bool) -> web.StreamResponse:
        if not self.ready:
            return _error(503, self.load_error or f"model {self.model_name} is loading")
        try:
            completion = parse_completion(await request.json(), self.model_name, chat,
                                          tuple(self.generator.adapters.names))
        except ValueError as err:  # json.JSONDecodeError is a ValueError
            return _error(getattr(err, "status", 400), str(err), getattr(err, "param", "body"))
        if completion.stream:
            return await self._stream(request, completion, CHAT if chat else COMPLETIONS)
        started = time.perf_counter()
        try:
            text, prompt_tokens, completion_tokens, finish = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.generator.generate, completion)
        except BadRequest as err:
            return _error(err.status, str(err), err.param)
        GENERATION_SECONDS.observe(time.perf_counter() - started)
        TOKENS.labels(kind="prompt").inc(prompt_tokens)
        TOKENS.labels(kind="completion").inc(completion_tokens)
        REQUESTS.labels(status="200").inc()
        body = completion_response(self.model_name, text, prompt_tokens, completion_tokens, finish)
        if chat:
            body["object"], choice = CHAT, body["choices"][0]
            choice["message"] = {"role": "assistant", "content": choice.pop("text")}
        return web.json_response(body)

    async def _stream(self, request: web.Request, completion: Completion, kind: str) -> web.StreamResponse:
        """Server-sent events as tokens are generated; headers go out with the first piece, so a prompt that
        does not fit is still a plain 400. A write that fails (the client left) cancels the generation."""
        loop = asyncio.get_running_loop()
        state = StreamState(loop)
        job = loop.run_in_executor(self.executor, self.generator.stream, completion, state)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        ident, stops, started = new_id(kind), StopScanner(completion.stop), time.perf_counter()
        try:
            async for piece in state.pieces_out():
                if not response.prepared:
                    await response.prepare(request)
                text = stops.feed(piece)
                if text:
                    await response.write(chunk(kind, ident, self.model_name, text).encode())
                if stops.stopped:
                    break
            if not response.prepared:
                await response.prepare(request)
            rest = stops.finish()
            if rest:
                await response.write(chunk(kind, ident, self.model_name, rest).encode())
        except BadRequest as err:
            return _error(err.status, str(err), err.param)
        except ConnectionResetError:
            REQUESTS.labels(status=CLIENT_CLOSED).inc()
            TOKENS.labels(kind="completion").inc(state.completion_tokens)
            return response
        finally:
            state.cancel.set()
        prompt_tokens = await job  # the thread sees the cancel flag at its next token
        finish = "length" if state.completion_tokens >= completion.max_tokens and not stops.stopped else "stop"
        try:
            await response.write(chunk(kind, ident, self.model_name, None, finish).encode())
            if completion.include_usage:
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": state.completion_tokens,
                         "total_tokens": prompt_tokens + state.completion_tokens}
                await response.write(chunk(kind, ident, self.model_name, None, usage=usage).encode())
            await response.write(DONE.encode())
        except ConnectionResetError:
            REQUESTS.labels(status=CLIENT_CLOSED).inc()
            return response
        GENERATION_SECONDS.observe(time.perf_counter() - started)
        TOKENS.labels(kind="prompt").inc(prompt_tokens)
        TOKENS.labels(kind="completion").inc(state.completion_tokens)
        REQUESTS.labels(status="200").inc()
        return response

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_dir", required=True, type=Path)
    parser.add_argument("--http_port", type=int, default=8080)
    parser.add_argument("--host", default="0.0.0.0")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.model_dir.is_dir():
        parser.error(f"--model_dir {args.model_dir}: not a directory")
    adapters = os.environ.get(ADAPTERS_FILE_ENV)
    server = PredictorServer(args.model_name, Generator(args.model_dir), Path(adapters) if adapters else None)
    web.run_app(server.app(), host=args.host, port=args.http_port, print=None)


if __name__ == "__main__":
    main()
