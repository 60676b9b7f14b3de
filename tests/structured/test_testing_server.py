"""The test server answers structured requests with schema-valid values by itself."""

from __future__ import annotations

import msgspec
import pytest

from llmfast.structured import output_spec
from llmfast.structured.call import structured_chat
from llmfast.structured.loop import run_tools
from llmfast.structured.tools import tool
from llmfast.testing import MockServer, Reply
from tests.structured.clients import PROVIDERS, client_for
from tests.structured.test_call import Invoice


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", ["native", "tool"])
async def test_unscripted_structured_requests_get_valid_values(provider: str, mode: str) -> None:
    async with MockServer() as server, client_for(server, provider) as client:
        first = await structured_chat(client, "bill", output_spec(Invoice), mode=mode)  # type: ignore[arg-type]
        again = await structured_chat(client, "bill", output_spec(Invoice), mode=mode)  # type: ignore[arg-type]
    assert isinstance(first.output, Invoice)
    assert first.attempts == 1
    assert isinstance(again.output, Invoice)


async def test_scripted_replies_still_win() -> None:
    async with MockServer() as server, client_for(server, "openai") as client:
        server.enqueue(Reply.text('{"number": "bad"}'), Reply.text('{"number": 3, "lines": []}'))
        reply = await structured_chat(client, "bill", output_spec(Invoice))
    assert reply.output == Invoice(3, [])
    assert reply.attempts == 2


async def test_plain_requests_still_echo() -> None:
    async with MockServer() as server, client_for(server, "openai") as client:
        assert (await client.chat("just echo")).text == "just echo"


async def test_a_tool_loop_needs_scripting_but_a_forced_tool_does_not() -> None:
    @tool
    def lookup(code: str) -> str:
        return f"found {code}"

    class Found(msgspec.Struct):
        code: str

    async with MockServer() as server, client_for(server, "openai") as client:
        forced = await structured_chat(client, "x", output_spec(Found), mode="tool")
        run = await run_tools(client, "what is abc?", [lookup])  # not forced: echoes
    assert isinstance(forced.output.code, str)
    assert run.text == "what is abc?"
