"""Chunk accumulation: any split of text and tool-call arguments into deltas, in any
interleaving of choices and calls, accumulates to the same completion."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from llmfast import ChatAccumulator, ChatCompletion, ChatCompletionChunk, ChunkChoice, Delta, Usage
from llmfast.types import FunctionDelta, ToolCallDelta


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points)] or [text]


def _chunk(*choices: ChunkChoice, usage: Usage | None = None) -> ChatCompletionChunk:
    return ChatCompletionChunk(id="c1", model="m", choices=list(choices), usage=usage)


@given(
    texts=st.lists(st.text(max_size=30), min_size=1, max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=10),
    order=st.randoms(use_true_random=False),
)
def test_text_of_several_choices_in_any_interleaving(
    texts: list[str], cuts: list[int], order: object
) -> None:
    pieces = [[(index, piece) for piece in _split(text, cuts)] for index, text in enumerate(texts)]
    # Interleave the choices' pieces while keeping each choice's own order.
    merged: list[tuple[int, str]] = []
    queues = [list(p) for p in pieces]
    rng = order  # a random.Random
    while any(queues):
        choice = rng.choice([i for i, q in enumerate(queues) if q])  # type: ignore[attr-defined]
        merged.append(queues[choice].pop(0))
    accumulator = ChatAccumulator()
    for index, piece in merged:
        accumulator.add(_chunk(ChunkChoice(index=index, delta=Delta(content=piece))))
    for index in range(len(texts)):
        accumulator.add(_chunk(ChunkChoice(index=index, finish_reason="stop")))
    accumulator.add(_chunk(usage=Usage(1, 2, 3)))
    result = accumulator.result()
    assert [c.message.content for c in result.choices] == texts
    assert [c.finish_reason for c in result.choices] == ["stop"] * len(texts)
    assert result.usage == Usage(1, 2, 3)
    assert accumulator.finished


@given(
    arguments=st.lists(st.text(max_size=25), min_size=1, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=30), max_size=8),
)
def test_tool_calls_assembled_by_index(arguments: list[str], cuts: list[int]) -> None:
    accumulator = ChatAccumulator()
    for index in range(len(arguments)):
        head = ToolCallDelta(
            index=index,
            id=f"call_{index}",
            type="function",
            function=FunctionDelta(name=f"f{index}", arguments=""),
        )
        accumulator.add(_chunk(ChunkChoice(delta=Delta(tool_calls=[head]))))
    fragments = [
        [(index, piece) for piece in _split(text, cuts)] for index, text in enumerate(arguments)
    ]
    longest = max(len(f) for f in fragments)
    for step in range(longest):  # round-robin: parallel calls interleave by index
        deltas = [
            ToolCallDelta(index=index, function=FunctionDelta(arguments=frags[step][1]))
            for index, frags in enumerate(fragments)
            if step < len(frags)
        ]
        accumulator.add(_chunk(ChunkChoice(delta=Delta(tool_calls=deltas))))
    calls = accumulator.result().tool_calls
    assert [c.function.arguments for c in calls] == arguments
    assert [(c.id, c.function.name) for c in calls] == [
        (f"call_{i}", f"f{i}") for i in range(len(arguments))
    ]


def test_repeated_id_and_name_in_every_fragment_are_kept_once() -> None:
    accumulator = ChatAccumulator()
    for piece in ['{"a"', ": 1}"]:
        delta = ToolCallDelta(id="call_x", function=FunctionDelta(name="f", arguments=piece))
        accumulator.add(_chunk(ChunkChoice(delta=Delta(tool_calls=[delta]))))
    (call,) = accumulator.result().tool_calls
    assert (call.id, call.function.name, call.function.arguments) == ("call_x", "f", '{"a": 1}')


def test_no_content_stays_none_and_empty_content_stays_empty() -> None:
    accumulator = ChatAccumulator()
    accumulator.add(_chunk(ChunkChoice(delta=Delta(role="assistant", refusal="no"))))
    accumulator.add(_chunk(ChunkChoice(index=1, delta=Delta(role="assistant", content=""))))
    result = accumulator.result()
    assert result.choices[0].message.content is None
    assert result.choices[0].message.refusal == "no"
    assert result.choices[1].message.content == ""
    assert not accumulator.finished


def test_a_whole_completion_is_the_result() -> None:
    accumulator = ChatAccumulator()
    completion = ChatCompletion(id="x")
    accumulator.add(completion)
    assert accumulator.result() is completion
    assert accumulator.finished
