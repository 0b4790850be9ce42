"""The transformer's list of served models comes from the predictor's OpenAI model list below its path prefix."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web

from llmops_operator.servers.served_models import ServedModels
from local_http import local_server


def predictor(prefix: str) -> web.Application:
    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "base"}, {"id": "support"}]})

    app = web.Application()
    app.router.add_get(f"{prefix}/v1/models", models)
    return app


@pytest.mark.parametrize("prefix", ["/openai", ""])  # KServe's Hugging Face runtime and the sandbox; vLLM
async def test_the_adapters_a_predictor_lists_below_its_prefix_are_served(prefix):
    async with local_server(predictor(prefix)) as url, httpx.AsyncClient(base_url=f"{url}{prefix}") as client:
        served = ServedModels("base")
        assert await served.names(client) == ["base", "support"]
        assert await served.serves(client, "support") and not await served.serves(client, "docs")


async def test_a_predictor_without_the_list_serves_the_base_only():
    async with local_server(web.Application()) as url, httpx.AsyncClient(base_url=f"{url}/openai") as client:
        assert await ServedModels("base").names(client) == ["base"]
