"""What sharing a flight through Redis costs, against coalescing in one process.

Run: python benchmarks/shared_flight_overhead.py  (starts its own redis-server on loopback;
medians of 5 interleaved repeats; needs ``pip install llmfast[redis]``)

The upstream answers at once (an in-process transport), so only coalescing is measured:

- leader alone, plain call: per-call wall time and client CPU with no layer (the floor),
  ``Coalesce()`` in process, ``Coalesce(store=RedisFlightStore(...))``, and the least
  any Redis flight needs with redis-py (claim, publish, release: three round trips,
  the *Redis floor*);
- leader alone, a 16-chunk stream: the same, every chunk published;
- a leader and one follower: how long after the leader's upstream answer the follower
  has the result (in process: a local waiter wakes; shared: the leader's publish and
  the follower's blocking read), and the CPU of the pair.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from llmfast import ChatCompletion, ChatCompletionChunk, ChatRequest, Request, Response, Transport
from llmfast.events import Event
from llmfast.layers import Coalesce, RedisFlightStore

CALLS = 400
PAIRS = 200
REPEATS = 5
BODIES = [  # one key per call: a call never follows the one before it, just finished
    ChatRequest(model="m", messages=[{"role": "user", "content": f"Hello {i}"}], temperature=0)
    for i in range(max(CALLS, PAIRS))
]
RESULT = msgspec.convert(
    {
        "id": "c1",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi!"},
                "finish_reason": "stop",
            }
        ],
    },
    ChatCompletion,
)
CHUNKS = [
    msgspec.convert(
        {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": f"tok{i} "}}]},
        ChatCompletionChunk,
    )
    for i in range(16)
]


class Instant:
    """An upstream that answers at once (``stream``: 16 chunks)."""

    def __init__(self) -> None:
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.answered = 0.0

    async def send(self, request: Request, /) -> Response:
        if self.gate is not None:
            self.entered.set()
            await self.gate.wait()
            self.answered = time.perf_counter()
        if request.stream:
            return Response(request, chunks=_chunks())
        return Response(request, result=RESULT)

    async def aclose(self) -> None:
        return None


async def _chunks() -> AsyncIterator[ChatCompletionChunk]:
    for chunk in CHUNKS:
        yield chunk


async def run(send: Callable[[Request], Awaitable[Response]], stream: bool) -> tuple[float, float]:
    """µs of wall time and of CPU per call, ``CALLS`` calls one after another."""
    wall, cpu = time.perf_counter(), time.process_time()
    for body in BODIES[:CALLS]:
        response = await send(Request(body, stream=stream))
        if stream:
            async for _ in response:
                pass
        else:
            await response.collect()
    return (
        (time.perf_counter() - wall) / CALLS * 1e6,
        (time.process_time() - cpu) / CALLS * 1e6,
    )


def redis_floor(redis: Redis) -> Callable[[Request], Awaitable[Response]]:
    """Claim, publish and release with redis-py, nothing else: three round trips."""
    claim = redis.register_script(
        "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', 10000) then return 1 end return 0"
    )
    encode = msgspec.msgpack.Encoder().encode

    async def send(request: Request) -> Response:
        await claim(["floor:lease"], ["t"])
        if request.stream:
            for chunk in CHUNKS:
                await redis.xadd("floor:stream", {"f": encode(chunk)})
        else:
            await redis.xadd("floor:stream", {"f": encode(RESULT)})
        await redis.delete("floor:lease")
        return await Instant().send(request)

    return send


async def pair_latency(leader: Transport, follower: Transport, upstream: Instant) -> float:
    """µs from the leader's upstream answer to the follower's result (median)."""
    joined = asyncio.Event()

    def hook(event: Event) -> None:
        if event.name == "coalesce.join":
            joined.set()

    took = []
    for body in BODIES[:PAIRS]:
        upstream.gate, upstream.entered, joined = asyncio.Event(), asyncio.Event(), asyncio.Event()
        first = asyncio.ensure_future(leader.send(Request(body)))
        await upstream.entered.wait()
        second = asyncio.ensure_future(follower.send(Request(body, on_event=hook)))
        await joined.wait()
        await asyncio.sleep(0.002)  # let the follower's blocking read reach Redis
        upstream.gate.set()
        response = await second
        took.append(time.perf_counter() - upstream.answered)
        await response.collect()
        await (await first).collect()
    upstream.gate = None
    return statistics.median(took) * 1e6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder],
            stdout=subprocess.DEVNULL,
        )
        try:
            asyncio.run(measure(f"redis://127.0.0.1:{port}/0"))
        finally:
            server.terminate()
            server.wait()


async def measure(url: str) -> None:
    redis = Redis.from_url(url)
    for _ in range(200):  # until the server listens
        try:
            await redis.ping()
            break
        except RedisConnectionError:
            await asyncio.sleep(0.05)
    bare = Instant()
    local = Coalesce()(Instant())
    shared = Coalesce(store=RedisFlightStore(url, namespace="bench"))(Instant())
    floor = redis_floor(redis)
    cases: dict[str, Callable[[Request], Awaitable[Response]]] = {
        "no layer (floor)": bare.send,
        "Coalesce() in process": local.send,
        "Redis floor (redis-py)": floor,
        "Coalesce(store=Redis)": shared.send,
    }
    for stream in (False, True):
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for send in cases.values():  # warm up: scripts loaded, connections open
            await run(send, stream)
        for _ in range(REPEATS):
            for name, send in cases.items():
                samples[name].append(await run(send, stream))
        print(f"\nleader alone, {'16-chunk stream' if stream else 'plain call'} (µs per call)")
        print(
            f"{'':26} {'wall':>8} {'CPU':>8}  {'CPU ÷ in-process':>16}  {'CPU ÷ Redis floor':>17}"
        )
        medians = {
            name: (statistics.median(w for w, _ in s), statistics.median(c for _, c in s))
            for name, s in samples.items()
        }
        local_cpu = medians["Coalesce() in process"][1]
        floor_cpu = medians["Redis floor (redis-py)"][1]
        for name, (wall, cpu) in medians.items():
            print(
                f"{name:26} {wall:8.1f} {cpu:8.1f}"
                f"  {cpu / local_cpu:11.2f}x  {cpu / floor_cpu:12.2f}x"
            )

    print(f"\na leader and one follower ({PAIRS} pairs, medians of {REPEATS} repeats)")
    upstream = Instant()
    in_process = Coalesce()(upstream)
    a = Coalesce(store=RedisFlightStore(url, namespace="pairs"))(upstream)
    b = Coalesce(store=RedisFlightStore(url, namespace="pairs"))(upstream)
    await pair_latency(in_process, in_process, upstream)  # warm up
    await pair_latency(a, b, upstream)
    local_runs: list[tuple[float, float]] = []
    shared_runs: list[tuple[float, float]] = []
    for _ in range(REPEATS):
        for runs, (lead, follow) in ((local_runs, (in_process, in_process)), (shared_runs, (a, b))):
            cpu = time.process_time()
            latency = await pair_latency(lead, follow, upstream)
            runs.append((latency, (time.process_time() - cpu) / PAIRS * 1e6))
    for name, runs in (("in process", local_runs), ("through Redis", shared_runs)):
        latency = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(
            f"{name:14} follower gets the result {latency:7.1f} µs after the upstream "
            f"answered; CPU per pair {cpu:7.1f} µs (incl. the benchmark's own waits)"
        )
    for layer in (local, shared, in_process, a, b):
        await layer.aclose()
    await redis.aclose()


if __name__ == "__main__":
    main()
