"""A real LLM API server for tests, demos and benchmarks: it speaks the OpenAI,
Anthropic Messages, Ollama and Gemini wire formats, with scripted replies and faults.

>>> async with MockServer() as server:          # doctest: +SKIP
...     server.enqueue(Reply.text("Hello!"), Reply.error(429, retry_after=1))
...     ...  # point any OpenAI-compatible client at server.url,
...     ...  # or a backend for another provider at server.url_for("anthropic")
"""

from .replies import Reply
from .server import MockServer, RecordedRequest

__all__ = ["MockServer", "RecordedRequest", "Reply"]
