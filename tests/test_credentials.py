"""A missing API key is caught before any request, naming the variable to set."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

import llmfast
from llmfast import Client, ConfigurationError, PoolConfig, SyncClient
from llmfast.cli import main
from llmfast.credentials import is_local_host
from llmfast.errors import MissingCredentialsError
from llmfast.testing import MockServer

KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "LLMFAST_PROVIDER",
    "LLMFAST_BASE_URL",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "LLMFAST_MODEL",
)
REMOTE = "http://api.example.com/v1"
"""A host that needs a key; the tests reach it only through the proxy below."""


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def proxy(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MockServer]:
    """The test server as the HTTP proxy: a request to any remote host lands on it."""
    async with MockServer() as server:
        monkeypatch.setenv("HTTP_PROXY", server.root_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        yield server


PROXIED = PoolConfig(trust_env=True)


async def test_without_a_key_nothing_is_sent_and_the_variable_is_named(
    proxy: MockServer,
) -> None:
    with pytest.raises(MissingCredentialsError) as caught:
        Client(base_url=REMOTE, model="m", pool=PROXIED)
    assert "OPENAI_API_KEY" in str(caught.value)
    assert "api.example.com" in str(caught.value)
    assert caught.value.env_vars == ("OPENAI_API_KEY",)
    assert isinstance(caught.value, ConfigurationError)
    assert proxy.request_count == 0
    # The same client with a key does reach the server: the check is what stopped it.
    async with Client(base_url=REMOTE, api_key="sk-1", model="m", pool=PROXIED) as client:
        assert (await client.chat("hello")).text == "hello"
    assert proxy.request_count == 1
    assert proxy.requests[0].headers["authorization"] == "Bearer sk-1"


async def test_the_key_from_the_environment_is_enough(
    proxy: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    async with Client(base_url=REMOTE, model="m", pool=PROXIED) as client:
        await client.chat("hi")
    assert proxy.requests[0].headers["authorization"] == "Bearer sk-env"


def test_the_quickstart_without_a_key_is_a_clear_error_not_a_401() -> None:
    with pytest.raises(MissingCredentialsError, match="no OpenAI API key: set OPENAI_API_KEY"):
        Client(model="gpt-4o-mini")


def test_a_host_that_resolves_nowhere_fails_on_the_key_not_the_connection() -> None:
    with pytest.raises(MissingCredentialsError, match=r"no API key for llm\.invalid"):
        Client(base_url="https://llm.invalid/v1", model="m")


@pytest.mark.parametrize(
    ("provider", "variables"),
    [
        ("anthropic:claude-x", ("ANTHROPIC_API_KEY",)),
        ("gemini:gemini-x", ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
        ("google", ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
    ],
)
def test_every_provider_that_needs_a_key_names_its_variables(
    provider: str, variables: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(MissingCredentialsError) as caught:
        Client(provider=provider)
    assert caught.value.env_vars == variables
    for name in variables:
        assert name in str(caught.value)
    monkeypatch.setenv(variables[-1], "k")  # any of them will do
    Client(provider=provider)


def test_a_third_party_base_url_says_how_to_send_without_a_key() -> None:
    with pytest.raises(MissingCredentialsError) as caught:
        Client(base_url="https://api.groq.com/openai/v1")
    message = str(caught.value)
    assert "no API key for api.groq.com: set OPENAI_API_KEY" in message
    assert 'api_key=""' in message


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/v1",
        "http://127.0.0.1:8000/v1",
        "http://127.1.2.3/v1",
        "http://[::1]:8000/v1",
        "http://0.0.0.0:8000/v1",
        "http://10.0.0.5/v1",
        "http://192.168.1.20:8000/v1",
        "http://172.17.0.2/v1",
        "http://100.100.1.1/v1",
        "http://[fd00::1]/v1",
        "http://vllm:8000/v1",
        "http://gpu-box.local/v1",
        "http://host.docker.internal:8000/v1",
        "http://model.localhost/v1",
    ],
)
def test_local_servers_need_no_key(url: str) -> None:
    Client(base_url=url, model="m")
    Client(provider="anthropic", base_url=url)


def test_ollama_needs_no_key_anywhere() -> None:
    Client(provider="ollama:llama3.2", base_url="https://ollama.example.com")


@pytest.mark.parametrize(
    "options",
    [
        {"api_key": ""},  # explicit: this server needs no key
        {"api_key": "EMPTY"},  # the vLLM habit
        {"headers": {"Authorization": "Basic dXNlcjpwdw=="}},
        {"headers": {"api-key": "azure-key"}},
        {"headers": {"X-Proxy-Token": "t"}},
    ],
)
def test_credentials_given_another_way_are_accepted(options: dict[str, object]) -> None:
    Client(base_url=REMOTE, model="m", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url", ["https://user:secret@proxy.example.com/v1", "https://proxy.example.com/v1?key=secret"]
)
def test_credentials_in_the_url_are_accepted(url: str) -> None:
    Client(base_url=url, model="m")


async def test_an_explicit_empty_key_sends_no_authorization(proxy: MockServer) -> None:
    async with Client(base_url=REMOTE, api_key="", model="m", pool=PROXIED) as client:
        await client.chat("hi")
    assert "authorization" not in proxy.requests[0].headers


def test_a_backend_built_by_hand_is_sent_as_built() -> None:
    Client(llmfast.OpenAIBackend(REMOTE), model="m")


def test_a_sync_client_reports_it_at_the_first_call_and_reads_the_key_then(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = SyncClient(base_url="https://llm.invalid/v1", model="m")
    try:
        with pytest.raises(MissingCredentialsError, match="OPENAI_API_KEY"):
            client.chat("hi")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-late")  # a notebook sets it, then retries
        assert "OpenAIBackend" in repr(client.client)
    finally:
        client.close()


def test_the_command_line_exits_2_naming_the_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["chat", "--provider", "anthropic:claude-x", "hi"])
    err = capsys.readouterr().err
    assert status == 2
    assert "ANTHROPIC_API_KEY" in err
    assert "Traceback" not in err
    status = main(["chat", "--base-url", "https://llm.invalid/v1", "--model", "m", "hi"])
    assert status == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("169.254.1.1", True),
        ("fe80::1", True),
        ("ollama", True),
        ("printer.lan", True),
        ("nas.home.arpa", True),
        ("api.openai.com", False),
        ("8.8.8.8", False),
        ("2001:4860:4860::8888", False),
        ("localhost.example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_is_local_host(host: str | None, local: bool) -> None:
    assert is_local_host(host) is local


def test_the_error_never_shows_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "")  # set but empty: still missing
    with pytest.raises(MissingCredentialsError) as caught:
        Client(provider="gemini", base_url="https://g.example.com/v1beta?alt=sse")
    assert "alt=sse" not in str(caught.value)
    assert os.environ.get("GEMINI_API_KEY") == ""
