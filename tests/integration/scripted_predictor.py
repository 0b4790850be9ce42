"""A predictor that streams a fixed script, for the tests that need exact chunk boundaries, a slow drip or a
flood: it serves the OpenAI chat completions route with `stream: true` and records what it wrote and whether its
client went away. It runs on its own event loop in a thread of the test process.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Script:
    chunks: list[str]
    delay: float = 0.0


@dataclass
class Record:
    requests: int = 0
    written: int = 0
    """Bytes of events written to the client so far."""
    cancelled: threading.Event = field(default_factory=threading.Event)
    """Set when a write failed because the client (the transformer) closed the connection."""


ECHOED = "echo"
"""The record of requests answered by echoing (see ScriptedPredictor's `echo`)."""


class ScriptedPredictor:
    """`scripts[name]` is streamed when the last message's content is `name`; any other content is streamed back
    as it came with `echo` (so a test can read exactly the prompt the transformer rendered), else `otherwise`, when
    given (recorded under the name "")."""

    def __init__(self, scripts: dict[str, Script], otherwise: Script | None = None, echo: bool = False):
        self.scripts = {**scripts, **({"": otherwise} if otherwise else {}), **({ECHOED: Script([])} if echo else {})}
        self.echo = echo
        self.prompts: list[str] = []
        self.records = {name: Record() for name in self.scripts}
        self.seen: list[list[dict]] = []
        """The messages of every request, in order."""
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.append(body["messages"])
        name = body["messages"][-1]["content"]
        self.prompts.append(name)
        if name in self.scripts:
            script = self.scripts[name]
        elif self.echo:
            name, script = ECHOED, Script([name[i:i + 40] for i in range(0, len(name), 40)])
        else:
            name, script = "", self.scripts[""]
        record = self.records[name]
        record.requests += 1
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for index, text in enumerate(script.chunks):
                event = {"id": "s", "object": "chat.completion.chunk", "choices": [
                    {"index": 0, "delta": {"content": text}, "finish_reason": None}]}
                data = f"data: {json.dumps(event)}\n\n".encode()
                await response.write(data)
                record.written += len(data)
                if script.delay:
                    await asyncio.sleep(script.delay)
            tokens = len(script.chunks)
            usage = {"prompt_tokens": 3, "completion_tokens": tokens, "total_tokens": 3 + tokens}
            await response.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\ndata: [DONE]\n\n".encode())
        except ConnectionResetError:
            record.cancelled.set()
        return response

    async def _complete(self, request: web.Request) -> web.Response:
        """KServe v1's path: the prompt echoed back as one (not streamed) completion."""
        prompt = (await request.json())["prompt"]
        self.prompts.append(prompt)
        usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
        return web.json_response({"choices": [{"index": 0, "text": prompt, "finish_reason": "stop"}], "usage": usage})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/openai/v1/chat/completions", self._chat)
        if self.echo:
            app.router.add_post("/openai/v1/completions", self._complete)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def __enter__(self) -> "ScriptedPredictor":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
