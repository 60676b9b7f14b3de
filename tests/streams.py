"""Reading a whole stream in a test."""

from __future__ import annotations

from typing import Any

import llmfast


async def read_stream(
    client: llmfast.Client, prompt: Any = "hi", **params: Any
) -> llmfast.ChatStream:
    """Open a stream, read it to its end and close it; the stream (its ``chunks`` and
    ``completion``)."""
    opened: llmfast.ChatStream = client.stream(prompt, **params)
    async with opened as stream:
        async for _ in stream:
            pass
    return stream
