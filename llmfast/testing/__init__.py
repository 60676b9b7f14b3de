"""A real OpenAI-compatible HTTP server for tests, demos and benchmarks.

>>> async with MockServer() as server:          # doctest: +SKIP
...     server.enqueue(Reply.text("Hello!"), Reply.error(429, retry_after=1))
...     ...  # point any OpenAI-compatible client at server.url
"""

from .replies import Reply
from .server import MockServer, RecordedRequest

__all__ = ["MockServer", "RecordedRequest", "Reply"]
