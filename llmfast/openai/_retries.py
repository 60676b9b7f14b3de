"""The retry layer of a facade client: llmfast's [`Retry`][llmfast.layers.Retry], with the
number of retries chosen per call (``client.with_options(max_retries=5)``)."""

from __future__ import annotations

from contextvars import ContextVar

from llmfast.layers.retry import Retry
from llmfast.transport import Request, Response, Transport, TransportLayer

__all__ = ["MAX_RETRIES", "Retries"]

MAX_RETRIES: ContextVar[int | None] = ContextVar("llmfast_openai_max_retries", default=None)
"""The retries of the calls made in this context (``None``: the client's)."""


class Retries:
    """Layer factory: ``Retry(max_attempts=max_retries + 1)``, or another count per call."""

    def __init__(self, max_retries: int) -> None:
        if type(max_retries) is not int or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        self.max_retries = max_retries

    def __call__(self, inner: Transport) -> RetriesLayer:
        return RetriesLayer(inner, self.max_retries)


class RetriesLayer(TransportLayer):
    """Sends through the retry layer for the call's count of retries."""

    def __init__(self, inner: Transport, max_retries: int) -> None:
        super().__init__(inner)
        self.max_retries = max_retries
        self._layers: dict[int, Transport] = {0: inner}
        self._default = self._for(max_retries)

    def _for(self, retries: int) -> Transport:
        layer = self._layers.get(retries)
        if layer is None:
            layer = self._layers[retries] = Retry(max_attempts=retries + 1)(self.inner)
        return layer

    async def send(self, request: Request, /) -> Response:
        retries = MAX_RETRIES.get()
        if retries is None:
            return await self._default.send(request)
        return await self._for(retries).send(request)

    def describe(self) -> str:
        return f"Retry(max_attempts={self.max_retries + 1})"
