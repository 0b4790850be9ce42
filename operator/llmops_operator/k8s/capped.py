"""Bounded reads of HTTP bodies a tenant controls (a transformer's /metrics, a model's answer, a ConfigMap the
API client is told to read with max_bytes). It lives at the lowest layer that speaks HTTP, so the API client
and the backends share it.

The body is read in chunks and the read stops at the cap, so a hostile or broken endpoint that streams
hundreds of MiB costs the operator at most the cap in memory, never its pod.
"""

from __future__ import annotations

import aiohttp

CHUNK_BYTES = 64 * 1024


class BodyTooLarge(ValueError):
    """The body went past the cap; the message says where and how much was allowed."""


async def read_capped(resp: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    """At most `limit` bytes of the body; BodyTooLarge as soon as it is longer (the rest is never read)."""
    declared = resp.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"{what}: the body is {declared} bytes, more than the {limit} the operator reads")
    parts, size = [], 0
    async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            resp.close()
            raise BodyTooLarge(f"{what}: the body is longer than the {limit} bytes the operator reads")
        parts.append(chunk)
    return b"".join(parts)


async def read_text_capped(resp: aiohttp.ClientResponse, limit: int, what: str) -> str:
    return (await read_capped(resp, limit, what)).decode(resp.get_encoding() if resp.charset else "utf-8",
                                                         errors="replace")
