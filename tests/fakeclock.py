"""A fake monotonic clock whose ``sleep`` advances time instantly, for exact timing tests."""

from __future__ import annotations

import asyncio
import time


class FakeClock:
    """``clock()`` reads the fake time; ``await sleep(s)`` records ``s`` and advances it.

    The fake time starts at the real ``time.monotonic()`` so deadlines computed from the
    real clock stay comparable.
    """

    def __init__(self) -> None:
        self.now = time.monotonic()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
