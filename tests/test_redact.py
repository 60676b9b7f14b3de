"""Credentials inside a base URL never show: reprs, errors (and their causes), logs,
stats, checkpoint records, CLI output.

The redactor is property-tested; everything else goes over real HTTP to
``MockServer`` or to a closed port on loopback.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import string
import traceback
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

import llmfast
from llmfast import (
    Client,
    ConnectError,
    ConnectTimeout,
    GeminiBackend,
    LoggingHook,
    OpenAIBackend,
    Router,
    Stats,
    Timeouts,
)
from llmfast.checkpoint import ErrorInfo
from llmfast.cli import main
from llmfast.layers import Retry
from llmfast.pool import map_transport_error
from llmfast.redact import MASK, is_secret_param, redact_text, redact_url

PASSWORD = "Pw9secretPASSWORD"
QUERY_KEY = "Qk7secretQUERYKEY"
SECRETS = (PASSWORD, QUERY_KEY, "alice")


def credentialed(root: str) -> str:
    """``root`` (``http://127.0.0.1:PORT/v1``) with user info and a ``?key=``."""
    scheme, _, rest = root.partition("://")
    return f"{scheme}://alice:{PASSWORD}@{rest}?key={QUERY_KEY}&api-version=2024"


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} shown in {text!r}"


def everything_shown(exc: BaseException) -> str:
    """What a traceback of ``exc`` prints (its causes included), plus its repr."""
    return "".join(traceback.format_exception(exc)) + repr(exc) + repr(exc.args)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there: connecting is refused


# -- the redactor -----------------------------------------------------------------------

_token = st.text(string.ascii_letters + string.digits, min_size=1, max_size=12)
_secret = st.text(string.ascii_letters + string.digits, min_size=10, max_size=24)
_host = st.from_regex(r"[a-z][a-z0-9]{0,10}(\.[a-z]{2,6}){0,2}", fullmatch=True)
_port = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
_path = st.lists(_token, max_size=4).map(lambda parts: "".join(f"/{p}" for p in parts))
_public_name = _token.filter(lambda n: not is_secret_param(n))
_secret_name = st.sampled_from(
    ["key", "KEY", "api_key", "api-key", "apiKey", "token", "access_token", "secret",
     "password", "sig", "signature", "x-api-key", "X-Amz-Signature", "client_secret",
     "refresh_token", "auth"]
)  # fmt: skip


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=_host,
    port=_port,
    path=_path,
    params=st.lists(st.tuples(_public_name, _token), max_size=4),
)
def test_a_url_without_credentials_is_unchanged(
    scheme: str, host: str, port: str, path: str, params: list[tuple[str, str]]
) -> None:
    query = "&".join(f"{n}={v}" for n, v in params)
    url = f"{scheme}://{host}{port}{path}" + (f"?{query}" if query else "")
    assert redact_url(url) == url
    assert redact_text(f"POST {url}: refused") == f"POST {url}: refused"


@given(
    scheme=st.sampled_from(["http", "https"]),
    user=st.one_of(st.none(), _secret),
    password=st.one_of(st.none(), _secret),
    host=_host,
    port=_port,
    path=_path,
    public=st.lists(st.tuples(_public_name, _token), max_size=3),
    hidden=st.lists(st.tuples(_secret_name, _secret), max_size=3),
    order=st.randoms(use_true_random=False),
)
def test_credentials_are_masked_and_the_rest_kept(
    scheme: str,
    user: str | None,
    password: str | None,
    host: str,
    port: str,
    path: str,
    public: list[tuple[str, str]],
    hidden: list[tuple[str, str]],
    order: object,
) -> None:
    userinfo = ""
    if user is not None or password is not None:
        userinfo = (user or "") + (f":{password}" if password is not None else "") + "@"
    params = public + hidden
    order.shuffle(params)  # type: ignore[attr-defined]
    query = "&".join(f"{n}={v}" for n, v in params)
    url = f"{scheme}://{userinfo}{host}{port}{path}" + (f"?{query}" if query else "")
    secrets = [s for s in (user, password) if s] + [v for _, v in hidden]
    visible = host + port + path + "".join(n + v for n, v in public)
    assume(all(s not in visible for s in secrets))

    clean = redact_url(url)
    for secret in secrets:
        assert secret not in clean
    parts = urlsplit(clean)
    assert parts.scheme == scheme
    assert parts.path == path
    assert parts.netloc == (f"{MASK}@" if userinfo else "") + host + port
    shown = [tuple(p.split("=", 1)) for p in parts.query.split("&")] if query else []
    assert shown == [(n, MASK if is_secret_param(n) else v) for n, v in params]
    assert redact_url(clean) == clean  # idempotent
    text = f"error: Connection timeout to host {url}. Retrying"
    assert redact_text(text) == f"error: Connection timeout to host {clean}. Retrying"


@given(st.text())
def test_any_text_is_accepted(text: str) -> None:
    once = redact_text(text)
    assert redact_text(once) == once
    if "://" not in text:
        assert once is text


def test_yarl_reprs_and_fragments_are_masked() -> None:
    text = "URL('https://u:pw@h/v1?token=abc#access_token=xyz') and http://h/?sig=q&x=1"
    assert redact_text(text) == (
        "URL('https://***@h/v1?token=***#access_token=***') and http://h/?sig=***&x=1"
    )


# -- where URLs are shown -------------------------------------------------------------


async def test_repr_of_a_client_backend_and_router_hides_credentials() -> None:
    url = credentialed("https://llm.example.com/v1")
    backend = OpenAIBackend(url, model="m")
    other = GeminiBackend(url, api_key="gem-KEY-1234567890", model="g")
    async with Client(backend=backend) as client, Client(Router([backend, other])) as routed:
        for text in (repr(client), repr(backend), repr(routed), backend.describe()):
            assert_clean(text)
            assert "gem-KEY-1234567890" not in text
        assert "llm.example.com/v1" in repr(client)
    client2 = Client(base_url=url, model="m")
    assert_clean(repr(client2))
    await client2.aclose()


async def test_a_refused_connection_shows_no_credentials(closed_port: int) -> None:
    url = credentialed(f"http://127.0.0.1:{closed_port}/v1")
    async with Client(base_url=url, model="m") as client:
        with pytest.raises(ConnectError) as caught:
            await client.chat("hi")
    shown = everything_shown(caught.value)
    assert_clean(shown)
    assert f"127.0.0.1:{closed_port}" in str(caught.value)  # still says where it went
    assert "Connect call failed" in shown or "refused" in shown.lower()


async def test_warmup_errors_show_no_credentials(closed_port: int) -> None:
    url = credentialed(f"http://127.0.0.1:{closed_port}/v1")
    async with Client(base_url=url, model="m") as client:
        with pytest.raises(ConnectError) as caught:
            await client.warmup(2)
    assert_clean(everything_shown(caught.value))
    assert "warming up http://***@127.0.0.1" in str(caught.value)


async def test_gemini_key_never_shows(closed_port: int) -> None:
    key = "AIzaGEMINIsecret0123456789"
    backend = GeminiBackend(f"http://127.0.0.1:{closed_port}/v1beta", api_key=key, model="g")
    async with Client(backend=backend) as client:
        with pytest.raises(ConnectError) as caught:
            await client.chat("hi")
        assert key not in repr(client)
    shown = everything_shown(caught.value)
    assert key not in shown
    assert "?key=" not in shown


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new SYNs, connecting hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            yield port
        finally:
            for filler in fillers:
                filler.close()


async def test_a_connection_timeout_and_its_cause_show_no_query_credentials(
    unanswered_port: int,
) -> None:
    """aiohttp's ``ConnectionTimeoutError`` says "Connection timeout to host <URL>",
    the query string included."""
    url = credentialed(f"http://127.0.0.1:{unanswered_port}/v1")
    async with Client(base_url=url, model="m", timeouts=Timeouts(connect=0.2)) as client:
        with pytest.raises(ConnectTimeout) as caught:
            await client.chat("hi")
    causes = []
    cause: BaseException | None = caught.value
    while cause is not None:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    assert any(isinstance(c, aiohttp.ConnectionTimeoutError) for c in causes)
    shown = everything_shown(caught.value) + "".join(repr(c.args) for c in causes)
    assert_clean(shown)
    assert "key=***" in shown  # aiohttp's message was there, masked


def test_aiohttp_exceptions_that_carry_the_url_are_masked() -> None:
    url = credentialed("https://h.example/v1")
    invalid = aiohttp.InvalidURL(url, "bad port")
    assert_clean(everything_shown(map_transport_error(invalid, f"POST {url}")))
    assert_clean(str(invalid) + repr(invalid.args) + str(invalid.url))
    timeout = aiohttp.ConnectionTimeoutError(f"Connection timeout to host {url}")
    mapped = map_transport_error(timeout, "POST")
    assert_clean(str(mapped) + str(timeout) + repr(timeout.args))
    info = aiohttp.RequestInfo(URL(url), "POST", CIMultiDictProxy(CIMultiDict()), URL(url))
    redirects = aiohttp.TooManyRedirects(info, (), status=302, message="Found")
    mapped = map_transport_error(redirects, "POST")
    assert_clean(everything_shown(mapped) + str(redirects))
    assert "h.example/v1" in str(redirects)


async def test_logs_stats_and_checkpoint_records_show_no_credentials(
    closed_port: int, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    url = credentialed(f"http://127.0.0.1:{closed_port}/v1")
    stats = Stats()
    retry = Retry(max_attempts=2, initial_backoff=0.0)
    async with Client(
        base_url=url, model="m", layers=[retry], on_event=LoggingHook(), stats=stats
    ) as client:
        with caplog.at_level(logging.DEBUG, logger="llmfast"):
            with pytest.raises(ConnectError):
                await client.chat("hi")
            try:
                results = await client.map(["a", "b"], checkpoint=tmp_path / "ck.jsonl")
            except llmfast.LLMFastError as exc:  # a batch may stop when all fail alike
                assert_clean(everything_shown(exc))
            else:
                assert [type(r.error) for r in results] == [ConnectError, ConnectError]
    assert caplog.records, "nothing was logged"
    assert_clean("\n".join(r.getMessage() for r in caplog.records))
    assert_clean(repr(stats.snapshot()))
    records = (tmp_path / "ck.jsonl").read_text()
    assert "ConnectError" in records
    assert_clean(records)


def test_checkpoint_error_info_masks_any_exception_text() -> None:
    info = ErrorInfo.of(RuntimeError(f"proxy said no for {credentialed('http://p/v1')}"))
    assert_clean(msgspec.json.encode(info).decode())
    assert "http://***@p/v1?key=***" in info.message


def test_a_bad_base_url_in_the_cli_shows_no_credentials(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = credentialed("ftp://h.example/v1")
    with pytest.raises(llmfast.ConfigurationError) as caught:
        Client(base_url=url, model="m")
    assert_clean(str(caught.value))
    assert main(["chat", "--base-url", url, "--model", "m", "hi"]) != 0
    out, err = capsys.readouterr()
    assert "base_url must start with" in err
    assert_clean(out + err)


async def test_the_cli_shows_no_credentials_of_a_failed_call(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    url = credentialed(f"http://127.0.0.1:{closed_port}/v1")
    argv = ["chat", "--base-url", url, "--model", "m", "--max-attempts", "1", "hi"]
    assert await asyncio.to_thread(main, argv) != 0
    out, err = capsys.readouterr()
    assert "ConnectError" in err
    assert_clean(out + err)


async def test_otel_spans_and_metrics_show_no_credentials(closed_port: int) -> None:
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    url = credentialed(f"http://127.0.0.1:{closed_port}/v1")
    spans = InMemorySpanExporter()
    tracer_provider = sdk_trace.TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    hook = llmfast.OpenTelemetry(
        provider="openai",
        base_url=url,
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    retry = Retry(max_attempts=2, initial_backoff=0.0)
    async with Client(base_url=url, model="m", layers=[retry], on_event=hook) as client:
        with pytest.raises(ConnectError):
            await client.chat("hi")
    finished = spans.get_finished_spans()
    assert len(finished) >= 3  # the call and its two attempts
    shown = "".join(span.to_json() for span in finished)
    metrics = reader.get_metrics_data()
    assert metrics is not None
    shown += metrics.to_json()
    assert "127.0.0.1" in shown
    assert "ConnectError" in shown
    assert_clean(shown)
