"""Conversation state over the Responses backend: the server holds the conversation
(``store`` + ``previous_response_id``, only the new items sent), or the caller does
(``store: false``, reasoning items carried back with their ``encrypted_content``)."""

from __future__ import annotations

import pytest

from llmfast import Client, ToolMessage, UserMessage
from llmfast.backends.openai_responses import OpenAIResponsesBackend, output_items
from llmfast.errors import BadRequestError
from llmfast.testing import MockServer, Reply
from llmfast.testing.responses_store import store_of
from llmfast.types import MessageLike

TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


def _client(server: MockServer) -> Client:
    return Client(OpenAIResponsesBackend(server.url, api_key="k", model="m"))


async def test_a_tool_conversation_continues_from_the_server_held_response() -> None:
    async with MockServer() as server, _client(server) as client:
        server.enqueue(Reply.tool_calls([{"id": "call_1", "name": "lookup", "arguments": {}}]))
        first = await client.chat("what is the answer", tools=[TOOL])
        [call] = first.tool_calls
        async with client.stream(
            [ToolMessage(content="42", tool_call_id=call.id)],
            tools=[TOOL],
            extra_body={"previous_response_id": first.id},
        ) as stream:
            async for _ in stream:
                pass
    follow_up = server.requests[1].json
    assert follow_up["previous_response_id"] == first.id
    # Only the new item went out: the server holds the question and the call.
    assert follow_up["input"] == [
        {"type": "function_call_output", "call_id": "call_1", "output": "42"}
    ]
    assert stream.completion.text == "what is the answer"  # the held turn's user text
    assert stream.completion.id == "resp_mock2"
    assert stream.completion.native is not None
    assert stream.completion.native["previous_response_id"] == first.id


async def test_an_unknown_previous_response_is_a_bad_request() -> None:
    async with MockServer() as server, _client(server) as client:
        with pytest.raises(BadRequestError, match="resp_nope"):
            await client.chat("hi", extra_body={"previous_response_id": "resp_nope"})


async def test_stateless_turns_carry_reasoning_items_with_encrypted_content() -> None:
    stateless = {"store": False, "include": ["reasoning.encrypted_content"]}
    async with MockServer() as server, _client(server) as client:
        server.enqueue(
            Reply.tool_calls(
                [{"id": "call_1", "name": "lookup", "arguments": {}}], reasoning="think first"
            )
        )
        first = await client.chat("question", tools=[TOOL], extra_body=stateless)
        assert first.message.reasoning_content == "think first"
        items = output_items(first)
        assert [item["type"] for item in items] == ["reasoning", "function_call"]
        assert items[0]["encrypted_content"] == "enc_mock1"
        assert store_of(server).get(first.id) is None  # store: false kept nothing
        messages: list[MessageLike] = [
            UserMessage(content="question"),
            *items,
            ToolMessage(content="42", tool_call_id="call_1"),
        ]
        second = await client.chat(messages, tools=[TOOL], extra_body=stateless)
    sent = server.requests[1].json["input"]
    assert sent[1] == items[0]  # the reasoning item went back as it came, encrypted
    assert sent[2]["call_id"] == "call_1"
    assert sent[3] == {"type": "function_call_output", "call_id": "call_1", "output": "42"}
    assert "previous_response_id" not in server.requests[1].json
    assert second.text == "question"


async def test_streamed_reasoning_arrives_as_reasoning_content() -> None:
    async with MockServer() as server, _client(server) as client:
        server.enqueue(Reply.text("answer", reasoning="step one"))
        async with client.stream("q") as stream:
            async for _ in stream:
                pass
    assert stream.completion.message.reasoning_content == "step one"
    assert stream.completion.text == "answer"
    usage = stream.completion.usage
    assert usage is not None
    assert usage.completion_tokens_details == {"reasoning_tokens": 2}
