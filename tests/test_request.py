"""``Request.with_body``: a layer that rewrites the body keeps everything else."""

from __future__ import annotations

import llmfast
from llmfast.transport import Request
from llmfast.types import ChatRequest


def test_with_body_keeps_every_other_field() -> None:
    def hook(event: llmfast.Event) -> None: ...

    original = Request(
        ChatRequest(model="a", messages=[]),
        stream=True,
        headers={"x-trace": "1"},
        deadline=12.5,
        on_event=hook,
        context={"gateway": ("m", "t")},
        raw_events=True,
    )
    original.earlier_usage = llmfast.Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)
    body = ChatRequest(model="b", messages=[])
    copy = original.with_body(body)
    assert copy.body is body
    assert original.body.model == "a"
    for name in Request.__slots__:  # a field added later must be kept too
        if name != "body":
            assert getattr(copy, name) is getattr(original, name), name
