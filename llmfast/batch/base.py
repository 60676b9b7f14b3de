"""What both batch runners share (the online [`Batch`][llmfast.Batch] and the
[`ProviderBatch`][llmfast.batch.provider.ProviderBatch]): run once, when iterated or
awaited; ``async with`` to stop early; the run's counters; the progress bar."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from llmfast.batch.result import BatchResult
from llmfast.errors import ConfigurationError
from llmfast.types import ChatCompletion

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["BatchRun", "open_bar", "progress_wanted"]


class BatchRun:
    """A batch run when iterated (``async for``: each [`BatchResult`][llmfast.BatchResult])
    or awaited (the list); runs once. Subclasses give ``_run``."""

    def __init__(self) -> None:
        self._agen: AsyncGenerator[BatchResult, None] | None = None
        self.succeeded = 0
        """Items that succeeded in this run."""
        self.failed = 0
        """Items that failed in this run."""
        self.resumed = 0
        """Items whose result was read back from the checkpoint."""
        self.tokens = 0
        """Total tokens used by this run's successful chat items (from their usage)."""

    def _run(self) -> AsyncGenerator[BatchResult, None]:
        raise NotImplementedError  # pragma: no cover

    def __aiter__(self) -> AsyncIterator[BatchResult]:
        if self._agen is not None:
            raise RuntimeError(f"a {type(self).__name__} runs only once")
        self._agen = self._run()
        return self._agen

    def __await__(self) -> Generator[Any, None, list[BatchResult]]:
        return self._collect().__await__()

    async def _collect(self) -> list[BatchResult]:
        async with self:
            return [result async for result in self]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop (see the class for what stopping leaves behind); safe to call twice."""
        agen = self._agen
        if agen is not None:
            await agen.aclose()

    def _tally(self, value: object) -> None:
        """Count one item of this run: ``value`` is its result, ``None`` when it failed."""
        if value is None:
            self.failed += 1
            return
        self.succeeded += 1
        if type(value) is ChatCompletion and value.usage is not None:
            self.tokens += value.usage.total_tokens


def progress_wanted(progress: bool | None) -> bool:
    """Whether to show a progress bar: ``None`` means when ``tqdm`` is installed and
    stderr is a terminal or a notebook; ``True`` without ``tqdm`` is an error."""
    installed = importlib.util.find_spec("tqdm") is not None
    if progress is None:
        interactive = "ipykernel" in sys.modules or (sys.stderr is not None and sys.stderr.isatty())
        return installed and interactive
    if progress and not installed:
        raise ConfigurationError("progress=True needs tqdm: pip install 'llmfast[progress]'")
    return progress


def open_bar(total: int | None, initial: int, wanted: bool) -> Any:
    """A ``tqdm`` bar (``None`` when not ``wanted``)."""
    if not wanted:
        return None
    from tqdm import TqdmWarning

    with warnings.catch_warnings():  # no ipywidgets in a notebook: the text bar, quietly
        warnings.simplefilter("ignore", TqdmWarning)
        from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="req", desc="llmfast", dynamic_ncols=True)
