"""The models behind the transformer: the base model and the LoRA adapters the predictor has loaded.

Read from the predictor's OpenAI model list (`GET <prefix>/v1/models`, relative to the client's base URL, which
carries the predictor's path prefix: the sandbox predictor, vLLM and KServe's runtime all answer it) at most once per FRESH_SECONDS, so an adapter the predictor has just loaded is served within
a second while a flood of requests (or of unknown names) costs the predictor nothing. A predictor without the route
serves only the base model.
"""

from __future__ import annotations

import time

import httpx

FRESH_SECONDS = 1.0
MAX_MODELS = 64


class ServedModels:
    def __init__(self, base: str):
        self.base = base
        self.known: list[str] = [base]
        self.read_at = float("-inf")

    async def names(self, client: httpx.AsyncClient) -> list[str]:
        """The served names, base first; re-read when older than FRESH_SECONDS."""
        if time.monotonic() - self.read_at > FRESH_SECONDS:
            await self._read(client)
        return self.known

    async def serves(self, client: httpx.AsyncClient, model: str) -> bool:
        return model == self.base or model in await self.names(client)

    async def _read(self, client: httpx.AsyncClient) -> None:
        self.read_at = time.monotonic()
        try:
            response = await client.get("/v1/models")
            data = response.json().get("data") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return  # keep the last list: the predictor's failure shows on the request itself
        if isinstance(data, list):
            ids = [m.get("id") for m in data[:MAX_MODELS] if isinstance(m, dict) and isinstance(m.get("id"), str)]
            self.known = [self.base, *sorted(i for i in ids if i != self.base)]
        else:
            self.known = [self.base]
