"""CPU cost per request of prompt-cache marks and of the token estimate.

Run: python benchmarks/prompt_cache_overhead.py  (µs per request: the median of 7
interleaved repeats, and the ratio to the floor of each group)

- OpenAI-compatible body: msgspec's encoding of the request alone (the floor), the
  backend's ``encode_request`` (which also looks for typed ``cache=`` marks), and the
  same with marks (dropped on this path);
- Anthropic body: encoding a ready wire dict (the floor), ``wire_body`` + encoding
  without marks, with typed marks, and with ``prompt_cache="auto"``;
- the rate limiter's estimate (``CharEstimator``) against the floor of ``len()`` over
  the message texts.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import msgspec

from llmfast.backends.anthropic import AnthropicBackend
from llmfast.backends.openai import encode_request
from llmfast.limits import CharEstimator
from llmfast.types import AssistantMessage, ChatRequest, SystemMessage, TextPart, UserMessage

CALLS = 5_000
REPEATS = 7
SYSTEM = "You are a careful assistant. " * 60
TURNS = [(f"What is in the report, part {i}?", f"It says many things, part {i}.") for i in range(5)]


def conversation(marked: bool) -> ChatRequest:
    messages: list[object] = [SystemMessage(SYSTEM, cache=True if marked else None)]
    for question, answer in TURNS:
        messages += [UserMessage(question), AssistantMessage(answer)]
    messages.append(UserMessage([TextPart("And the summary?", cache=True if marked else None)]))
    return ChatRequest(model="claude-sonnet-4-5", messages=messages, max_tokens=200)  # type: ignore[arg-type]


PLAIN, MARKED = conversation(False), conversation(True)
MANUAL, AUTO = AnthropicBackend(api_key="k"), AnthropicBackend(api_key="k", prompt_cache="auto")
ENCODE = msgspec.json.Encoder().encode
WIRE = MANUAL.wire_body(PLAIN)
ESTIMATE = CharEstimator()
TEXTS = [SYSTEM] + [text for turn in TURNS for text in turn] + ["And the summary?"]

GROUPS: dict[str, dict[str, Callable[[], object]]] = {
    "OpenAI-compatible body": {
        "msgspec encode (floor)": lambda: ENCODE(PLAIN),
        "encode_request": lambda: encode_request(PLAIN, False),
        "encode_request, marks dropped": lambda: encode_request(MARKED, False),
    },
    "Anthropic body": {
        "encode a ready dict (floor)": lambda: ENCODE(WIRE),
        "wire_body + encode": lambda: ENCODE(MANUAL.wire_body(PLAIN)),
        "... with typed marks": lambda: ENCODE(MANUAL.wire_body(MARKED)),
        '... prompt_cache="auto"': lambda: ENCODE(AUTO.wire_body(PLAIN)),
    },
    "token estimate": {
        "len() of the texts (floor)": lambda: sum(len(t) for t in TEXTS) // 4,
        "CharEstimator": lambda: ESTIMATE(PLAIN),
    },
}


def once(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(CALLS):
        work()
    return (time.perf_counter() - started) / CALLS * 1e6


def main() -> None:
    timings: dict[str, list[float]] = {}
    for _ in range(REPEATS):  # interleaved: every case once per repeat
        for cases in GROUPS.values():
            for name, work in cases.items():
                timings.setdefault(name, []).append(once(work))
    for group, cases in GROUPS.items():
        print(group)
        floor = None
        for name in cases:
            median = statistics.median(timings[name])
            floor = floor or median
            print(f"  {name:32} {median:7.2f} µs  {median / floor:5.2f}x")


if __name__ == "__main__":
    main()
