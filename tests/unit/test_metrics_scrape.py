"""Scraping a tenant's transformer: the body is read up to a cap and parsed off the event loop, so a hostile
/metrics costs the operator neither its memory nor its liveness."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from llmops_operator.backends import prometheus
from local_http import local_server

MIB = 1024 * 1024


class HostileMetrics:
    """/metrics streams `total` bytes of valid-looking series, chunked (no Content-Length); counts what it sent."""

    def __init__(self, total: int, declare_length: bool = False):
        self.total = total
        self.declare_length = declare_length
        self.sent = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        if self.declare_length:
            resp.content_length = self.total
        await resp.prepare(request)
        line = b'llmops_guardrail_hits_total{rule="r",direction="input",effect="block"} 1\n'
        chunk = line * (MIB // len(line))
        try:
            while self.sent < self.total:
                await resp.write(chunk)
                self.sent += len(chunk)
        except (ConnectionResetError, ConnectionError):
            pass
        return resp


def metrics_app(handler) -> web.Application:
    app = web.Application()
    app.router.add_get("/metrics", handler)
    return app


async def test_a_300_mib_metrics_body_is_cut_off_at_the_cap(monkeypatch):
    hostile = HostileMetrics(300 * MIB)
    async with local_server(metrics_app(hostile.handle)) as url:
        got = await prometheus.scrape(url, time.time())
        await asyncio.sleep(0.2)  # let the server notice the closed connection
    assert got.text is None
    assert f"longer than the {prometheus.MAX_SCRAPE_BYTES} bytes" in got.error
    # The client stopped reading at the cap: the server got no further than the cap plus the socket buffers.
    assert hostile.sent < prometheus.MAX_SCRAPE_BYTES + 16 * MIB < hostile.total


async def test_a_declared_length_over_the_cap_is_refused_before_reading():
    hostile = HostileMetrics(64 * MIB, declare_length=True)
    async with local_server(metrics_app(hostile.handle)) as url:
        got = await prometheus.scrape(url, time.time())
    assert got.text is None and f"{64 * MIB} bytes, more than the {prometheus.MAX_SCRAPE_BYTES}" in got.error


async def test_a_body_under_the_cap_is_read_whole():
    body = HostileMetrics(2 * MIB)
    async with local_server(metrics_app(body.handle)) as url:
        got = await prometheus.scrape(url, time.time())
    assert got.error is None and len(got.text) == body.sent


async def test_parsing_a_large_body_leaves_the_event_loop_answering():
    line = 'llmops_guardrail_hits_total{{rule="r{}",direction="input",effect="block"}} 1\n'
    text = "".join(line.format(i) for i in range(20_000)) + "junk_series 1\n" * 20_000
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    sample = await prometheus.parse_off_loop(text)
    took = time.monotonic() - started
    ticking.cancel()
    assert len(sample.hits) == 20_000
    assert took > 0.2, "the body was too small to show anything"
    assert max(gaps) < 0.2, f"the loop stalled for {max(gaps):.2f} s while parsing"
