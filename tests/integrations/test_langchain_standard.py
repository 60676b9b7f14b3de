"""LangChain's standard test suites (``langchain-tests``) for ``ChatLLMFast`` and
``LLMFastEmbeddings``: the unit suites in full; the integration suites against
``llmfast.testing.MockServer``, in the OpenAI and the Anthropic wire formats (and the
embeddings in OpenAI's and Ollama's).

Where a standard test needs a particular answer (a tool call with given arguments,
JSON in ``json_mode``, usage with cache or reasoning details) the server is scripted
for it in ``SCRIPTS``; everything else gets the server's default answers (an echo of
the prompt, or a schema-valid value for a structured request). Every test that does
not run is in ``SKIPS``, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_tests.integration_tests import (
    ChatModelIntegrationTests,
    EmbeddingsIntegrationTests,
)
from langchain_tests.unit_tests import ChatModelUnitTests, EmbeddingsUnitTests

from llmfast.integrations.langchain import ChatLLMFast, LLMFastEmbeddings
from llmfast.testing import MockServer, Reply
from tests.integrations.langchain_replies import JOKE, call, usage_reply

_NETWORK = (
    "downloads its input from the internet, which the suite does not reach; llmfast's "
    "image parts are tested against the local server in test_langchain_chat.py"
)

SKIPS: dict[str, str] = {
    # key: a standard test's name, or "<provider>/<name>" for one wire format only
    "test_serdes": (
        "ChatLLMFast is not LangChain-serializable (is_lc_serializable() is False): it "
        "may hold a live llmfast client and layers, which dumpd/load cannot carry"
    ),
    "test_stream_time": (
        "a VCR benchmark of a recorded provider; here every call is answered by the "
        "local test server, and CPU per call is measured in benchmarks/langchain_overhead.py"
    ),
    "test_image_inputs": _NETWORK,
    "test_image_tool_message": _NETWORK,
    "test_pdf_inputs": _NETWORK,
    "test_pdf_tool_message": _NETWORK,
    "test_audio_inputs": _NETWORK,
    "test_anthropic_inputs": (
        "Anthropic-native content blocks (cache_control, thinking signatures) are not "
        "carried: llmfast's requests are OpenAI-shaped; see docs/integrations/langchain.md"
    ),
    "anthropic/test_json_mode": (
        "Anthropic's Messages API has no JSON mode (llmfast raises "
        "UnsupportedParameterError for response_format); json_schema and "
        "function_calling are tested"
    ),
}

_TOOL = call("magic_function", {"input": 3})
_NO_ARGS = call("magic_function_no_args", {})
SCRIPTS: dict[str, list[Reply]] = {
    # the replies a standard test needs, queued before it runs (by the test's name)
    "test_tool_calling": [_TOOL, _TOOL],
    "test_tool_calling_async": [_TOOL, _TOOL],
    "test_tool_calling_with_no_arguments": [_NO_ARGS, _NO_ARGS],
    "test_tool_choice": [_TOOL],  # then "magic_function" forced: the server's own answer
    "test_bind_runnables_as_tools": [call("greeting_generator", {"answer_style": "pirate"})],
    "test_agent_loop": [call("get_weather", {"location": "San Francisco, CA"})],
    "test_unicode_tool_call_integration": [
        call("unicode_customer", {"customer_name": "你好啊集团", "description": "tech"}),
        call("unicode_customer", {"customer_name": "こんにちは株式会社", "description": "co"}),
    ],
    "test_json_mode": [JOKE, JOKE, JOKE, JOKE],
}


def _skipping(provider: str) -> Any:
    """A class decorator replacing the tests in ``SKIPS`` by ones that skip with the
    reason (marked xfail with it, as langchain-tests requires of an overridden test)."""

    def apply(cls: type) -> type:
        for key, reason in SKIPS.items():
            scope, _, name = key.rpartition("/")
            if scope in ("", provider) and hasattr(cls, name):
                setattr(cls, name, _skipped(reason))
        return cls

    return apply


def _skipped(reason: str) -> Any:
    @pytest.mark.xfail(reason=reason)
    def test(self: Any) -> None:
        pytest.skip(reason)

    return test


@pytest.fixture
def benchmark(benchmark: Any) -> Any:
    """pytest-benchmark's fixture, disabled: the unit suite's ``test_init_time`` runs
    its code once (CPU is measured in ``benchmarks/``; the rounds took a second)."""
    benchmark.disabled = True
    return benchmark


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer.in_thread() as running:
        yield running


# --- unit suites ------------------------------------------------------------------------


@_skipping("openai")
class TestChatUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatLLMFast]:
        return ChatLLMFast

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "mock-model", "api_key": "test"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"OPENAI_API_KEY": "sk-from-env"},
            {"model": "mock-model"},
            {"api_key": "sk-from-env"},
        )

    @property
    def model_override_value(self) -> str:
        return "mock-override"


class TestEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[LLMFastEmbeddings]:
        return LLMFastEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "mock-embed", "api_key": "test"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return {"OPENAI_API_KEY": "sk-from-env"}, {"model": "m"}, {"api_key": "sk-from-env"}


# --- integration suites -------------------------------------------------------------------


class _Served:
    """Points the suite's models at the module's server and queues ``SCRIPTS``."""

    provider = "openai"
    server: MockServer

    @pytest.fixture(autouse=True)
    def _scripted(self, server: MockServer, request: pytest.FixtureRequest) -> None:
        self.server = server
        server.reset()
        server.enqueue(*SCRIPTS.get(request.node.originalname, ()))


@_skipping("openai")
class TestChatOpenAIFormat(_Served, ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatLLMFast]:
        return ChatLLMFast

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": "mock-model",
            "base_url": self.server.url_for(self.provider),
            "provider": self.provider,
        }

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "mock-override"

    @property
    def supported_usage_metadata_details(self) -> Any:
        details = ["cache_read_input", "reasoning_output"]
        return {"invoke": details, "stream": details}

    def _usage(self, detail: str, stream: bool) -> AIMessage:
        self.server.enqueue(usage_reply(detail))
        model = self.chat_model_class(**self.chat_model_params)
        if not stream:
            result = model.invoke("hello there")
            assert isinstance(result, AIMessage)
            return result
        full: Any = None
        for chunk in model.stream("hello there"):
            full = chunk if full is None else full + chunk
        assert isinstance(full, AIMessage)
        return full

    def invoke_with_cache_read_input(self, *, stream: bool = False) -> AIMessage:
        return self._usage("cache_read", stream)

    def invoke_with_cache_creation_input(self, *, stream: bool = False) -> AIMessage:
        return self._usage("cache_creation", stream)

    def invoke_with_reasoning_output(self, *, stream: bool = False) -> AIMessage:
        return self._usage("reasoning", stream)


@_skipping("anthropic")
class TestChatAnthropicFormat(TestChatOpenAIFormat):
    provider = "anthropic"

    @property
    def supported_usage_metadata_details(self) -> Any:
        details = ["cache_read_input", "cache_creation_input"]
        return {"invoke": details, "stream": details}


class TestEmbeddingsOpenAIFormat(_Served, EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[LLMFastEmbeddings]:
        return LLMFastEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        url = self.server.url_for(self.provider)
        return {"model": "mock-embed", "base_url": url, "provider": self.provider}


class TestEmbeddingsOllamaFormat(TestEmbeddingsOpenAIFormat):
    provider = "ollama"
