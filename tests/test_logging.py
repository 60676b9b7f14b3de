"""Standard logging: quiet by default, ``LoggingHook`` on the ``llmfast.*`` loggers, and
the API key redacted everywhere (log records, reprs, exceptions) across every backend."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import traceback
from typing import Any

import pytest

import llmfast
from llmfast.hooks import fan_out
from llmfast.layers import Cache, CircuitBreaker, RateLimit, Retry
from llmfast.log import LoggingHook
from llmfast.stats import Stats
from llmfast.testing import MockServer, Reply
from tests.fakeclock import FakeClock

SECRET = "sk-log-SECRET-do-not-leak-0123456789"
PROVIDERS = ["openai", "anthropic", "gemini", "ollama"]


def records_of(caplog: pytest.LogCaptureFixture, name: str) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == name]


def test_llmfast_is_quiet_until_the_application_configures_logging() -> None:
    code = textwrap.dedent(
        """
        import asyncio, logging, llmfast
        from llmfast.log import LoggingHook
        from llmfast.testing import MockServer, Reply

        async def main():
            async with MockServer() as server:
                server.enqueue(Reply.error(500), Reply.error(401))
                async with llmfast.Client(base_url=server.url, api_key="k", model="m",
                                          on_event=LoggingHook(), max_retries=0) as client:
                    for _ in range(2):
                        try:
                            await client.chat("hi")
                        except llmfast.APIStatusError:
                            pass
        asyncio.run(main())
        assert all(not logging.getLogger(n).handlers or n == "llmfast"
                   for n in logging.root.manager.loggerDict if n.startswith("llmfast"))
        assert [type(h) for h in logging.getLogger("llmfast").handlers] == [logging.NullHandler]
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # WARNING records went nowhere: no "last resort" printing


async def test_the_hook_logs_each_area_on_its_own_logger(
    server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="llmfast")
    clock = FakeClock()
    layers: list[llmfast.Layer] = [
        Cache(),
        Retry(max_attempts=2, clock=clock, sleep=clock.sleep),
        RateLimit(rpm=100, adaptive=False),  # no token estimates (and their notices)
    ]
    server.enqueue(Reply.error(503, retry_after=1.5), Reply.text("hello"), Reply.error(400))
    async with llmfast.Client(
        base_url=server.url, api_key=SECRET, model="m", layers=layers, on_event=LoggingHook()
    ) as client:
        await client.chat("hi", seed=1)
        await client.chat("hi", seed=1)  # a cache hit
        with pytest.raises(llmfast.BadRequestError):
            await client.chat("bad")
    calls = records_of(caplog, "llmfast.call")
    assert [level for level, _ in calls] == [logging.INFO, logging.INFO, logging.WARNING]
    assert calls[0][1].startswith("chat m ok in ")
    assert ", tokens 1 in / 1 out" in calls[0][1]
    assert calls[2][1].startswith("chat m BadRequestError in ")
    retry = records_of(caplog, "llmfast.retry")
    assert (logging.INFO, "retrying in 1.500 s (server)") in retry
    assert any(
        m.startswith("attempt 1 failed after ") and "ServerError (retryable)" in m for _, m in retry
    )
    assert (logging.DEBUG, "attempt 2") in retry
    cache = [m for _, m in records_of(caplog, "llmfast.cache")]
    assert [m.split(" ")[0] for m in cache] == ["cache.miss", "cache.store", "cache.hit"]
    waits = records_of(caplog, "llmfast.ratelimit")
    assert len(waits) == 3
    assert all(level == logging.DEBUG for level, _ in waits)
    record = next(r for r in caplog.records if r.name == "llmfast.call")
    assert record.llmfast_event == "done"  # type: ignore[attr-defined]
    assert record.llmfast_elapsed > 0  # type: ignore[attr-defined]


async def test_nothing_is_formatted_below_the_configured_level(
    server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="llmfast")
    server.enqueue(Reply.text("ok"), Reply.error(500))
    async with llmfast.Client(
        base_url=server.url, api_key=SECRET, model="m", on_event=LoggingHook(), layers=[]
    ) as client:
        await client.chat("hi")
        with pytest.raises(llmfast.ServerError):
            await client.chat("hi")
    assert [(r.name, r.levelno) for r in caplog.records] == [("llmfast.call", logging.WARNING)]


async def test_breaker_changes_are_warnings(
    server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llmfast")
    server.enqueue(Reply.reset())
    async with llmfast.Client(
        base_url=server.url,
        api_key=SECRET,
        model="m",
        layers=[CircuitBreaker(consecutive=1, cooldown=60)],
        on_event=LoggingHook(),
    ) as client:
        with pytest.raises(llmfast.ReadError):
            await client.chat("hi")
    ((level, message),) = records_of(caplog, "llmfast.breaker")
    assert level == logging.WARNING
    assert message.startswith("circuit of ")
    assert message.endswith(" is now open")


# -- the API key never shows --------------------------------------------------------------


def credentials(provider: str) -> dict[str, Any]:
    if provider == "ollama":  # no API keys: a proxy's bearer token, in the headers
        return {"headers": {"Authorization": f"Bearer {SECRET}"}}
    return {"api_key": SECRET}


def _exception_texts(error: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(error))]
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        current = current.__cause__ or current.__context__
    return texts


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_api_key_never_appears_in_logs_reprs_or_errors(
    server: MockServer, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: llmfast's, aiohttp's, asyncio's
    stats = Stats()
    faults = [
        Reply.error(401, message="invalid api key"),
        Reply.error(403),
        Reply.error(429, retry_after=0),
        Reply.error(500),
        Reply.reset(),
        Reply.malformed(),
        Reply.truncated(),
        Reply.stream_error({"message": "overloaded"}, after_chunks=1),
    ]
    texts: list[str] = []
    raised: list[str] = []
    clock = FakeClock()
    retry = Retry(max_attempts=2, clock=clock, sleep=clock.sleep)
    async with llmfast.Client(
        provider=provider,
        base_url=server.url_for(provider),
        model="m",
        layers=[Cache(), retry],
        on_event=fan_out(stats, LoggingHook()),
        **credentials(provider),
    ) as client:
        texts += [repr(client), repr(client.backend)]
        for fault in faults:
            for stream in (False, True):
                server.reset()  # forget what a call that gave up left queued
                server.enqueue(fault, fault)  # a retry meets it again
                try:
                    if stream:
                        async with client.stream("hi", temperature=0) as s:
                            texts += [repr(s), repr(s.response)]
                            await s.collect()
                    else:
                        await client.chat("hi", temperature=0)
                except llmfast.LLMFastError as exc:
                    raised.append(type(exc).__name__)
                    texts += _exception_texts(exc)
        texts += [repr(client.backend)]
    async with llmfast.Client(  # nothing listens there; one attempt
        provider=provider,
        base_url="http://127.0.0.1:9",
        model="m",
        layers=[],
        **credentials(provider),
    ) as client:
        with pytest.raises(llmfast.ConnectError) as refused:
            await client.chat("hi")
        texts += _exception_texts(refused.value)
    texts += [str(stats.snapshot()), repr(stats.snapshot())]
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s")
    texts += [formatter.format(record) + repr(vars(record)) for record in caplog.records]

    kinds = ["Authentication", "PermissionDenied", "RateLimit", "Server", "Read"]
    assert raised[:10] == [f"{kind}Error" for kind in kinds for _ in (1, 2)]
    assert len(raised) == 2 * len(faults), raised
    assert any(r.name == "llmfast.call" for r in caplog.records)
    assert stats.snapshot().errors >= len(faults)
    leaks = [text for text in texts if SECRET in text or SECRET[8:] in text]
    assert not leaks
