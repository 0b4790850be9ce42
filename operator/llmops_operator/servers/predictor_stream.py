"""Token streaming for the sandbox predictor: `stream: true` on its OpenAI routes, as KServe's runtime serves it.

Generation runs in the predictor's worker thread with a transformers streamer that hands decoded text to the event
loop. The thread takes a slot of a small semaphore before handing over each piece and the loop gives it back once
the piece is written to the client, so a slow client pauses generation instead of filling a queue. A client that
goes away (a failed write) sets the cancel flag, which a stopping criterion reads before every new token.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

IN_FLIGHT_PIECES = 8
"""Decoded pieces the generating thread may be ahead of the client."""
SLOT_WAIT_SECONDS = 0.1
"""How often a thread waiting for the client looks at the cancel flag."""
END = object()


@dataclass
class StreamState:
    """What one streamed generation shares between the generating thread and the event loop."""

    loop: asyncio.AbstractEventLoop
    cancel: threading.Event = field(default_factory=threading.Event)
    slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(IN_FLIGHT_PIECES))
    pieces: asyncio.Queue = field(default_factory=asyncio.Queue)
    completion_tokens: int = 0

    def hand_over(self, item: Any) -> None:
        """From the thread: wait for a slot (or the cancel flag), then queue the item on the loop."""
        while not self.slots.acquire(timeout=SLOT_WAIT_SECONDS):
            if self.cancel.is_set():
                return
        self.loop.call_soon_threadsafe(self.pieces.put_nowait, item)

    def close(self, outcome: Any = END) -> None:
        """From the thread, when generation ends (END) or fails (the exception): queued without a slot."""
        self.loop.call_soon_threadsafe(self.pieces.put_nowait, outcome)

    async def pieces_out(self) -> AsyncIterator[Any]:
        """On the loop: the items in order, up to END; each one's slot is given back when the next is asked for."""
        while True:
            item = await self.pieces.get()
            if item is END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            self.slots.release()


def streamer_for(tokenizer: Any, state: StreamState) -> Any:
    """A transformers streamer that decodes new tokens into text pieces and counts them."""
    from transformers import TextStreamer

    class PieceStreamer(TextStreamer):
        def put(self, value: Any) -> None:
            if not self.next_tokens_are_prompt:
                state.completion_tokens += int(value.numel())
            super().put(value)

        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                state.hand_over(text)

    return PieceStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


def cancel_criterion(state: StreamState) -> Any:
    """Stops generation once the request is cancelled."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            import torch

            return torch.full((input_ids.shape[0],), state.cancel.is_set(), dtype=torch.bool)

    return StoppingCriteriaList([Cancelled()])


class StopScanner:
    """Cuts streamed text at the first stop sequence; holds back a possible stop's prefix at the end."""

    def __init__(self, stop: tuple[str, ...]):
        self.stop = stop
        self.hold = max((len(s) for s in stop), default=1) - 1
        self.text = ""
        self.sent = 0
        self.stopped = False

    def feed(self, piece: str) -> str:
        self.text += piece
        cuts = [self.text.find(s) for s in self.stop if s in self.text]
        if cuts:
            self.stopped = True
            return self._upto(min(cuts))
        return self._upto(max(self.sent, len(self.text) - self.hold))

    def finish(self) -> str:
        return "" if self.stopped else self._upto(len(self.text))

    def _upto(self, point: int) -> str:
        out, self.sent = self.text[self.sent:point], max(self.sent, point)
        return out
