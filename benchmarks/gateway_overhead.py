"""What a gateway adds: direct calls vs through ``llmfast serve`` vs through a bare
aiohttp pass-through proxy (the floor for a Python gateway) vs through the LiteLLM
proxy (when ``litellm[proxy]`` is installed), all to the same upstream, in one run.

    .venv/bin/python benchmarks/gateway_overhead.py [--repeats 3] [--rate 200] [--stream-rate 100]
        [--latency-rate 50]
    .venv/bin/python benchmarks/gateway_overhead.py --cpu-only [--repeats 7] [--seconds 10]
        [--stream-shape openai] [--pace 0.001]
    .venv/bin/python benchmarks/gateway_overhead.py --callgrind [--calls 100,400] [--concurrency 8]

For each gateway, interleaved over ``--repeats`` rounds (medians reported):

- the gateway process's CPU per request (user + system, its whole process tree) at
  ``--rate`` chat requests/s and ``--stream-rate`` streams/s;
- added latency p50/p99 at ``--latency-rate`` (open loop: requests are sent on a
  schedule, not when the previous one answered), non-streaming and streaming: a rate
  every gateway keeps up with, so the figure is the gateway's, not its queue's;
- the highest rate in a ladder (25/s up) at which p99 stays under 50 ms with no errors.

``--cpu-only`` measures the CPU per request alone (no latency, no rate ladder), so
many rounds fit in a few minutes, with every gateway started once and all of them
loaded at the same time (each at the given rates, their schedules offset), each one's
CPU read over the same seconds, and reports llmfast's ratio to the pass-through per
round with their median: the figure to quote for the 1.3x goal, since the machine's
state drifts, between rounds and within one, by more than the gateways differ.

``--callgrind`` counts instead the user-space instructions one more request costs the
pass-through and ``llmfast serve`` (``--gateways`` to choose): each runs under
``valgrind --tool=callgrind`` twice per mode, serving ``--calls`` short and long
numbers of chat requests or streams ``--concurrency`` at a time, then gets SIGTERM
(both stop cleanly on it, so callgrind writes its totals at exit); the figure is
``(Ir(long) - Ir(short)) / (long - short)``, with start-up, imports and warm-up
cancelled out. The same on a quiet and a loaded machine, so it is the figure to
compare changes with; it leaves out system time (the sends and receives), which
the wall-clock CPU figure includes: check both. It takes ~10 minutes.

The upstream is nginx serving the mock server's replies (``servers.py``), or the mock
server itself when nginx is missing. ``--stream-shape openai`` pads its stream's events
as OpenAI's own are (a random ``"obfuscation"`` per event, ``"refusal":null`` in the
role, ``"service_tier"``), the shape the gateway meets in front of OpenAI. nginx sends a
stream's whole body at once, so the gateway reads it in one or two reads (a burst: the
cost per stream, not per event); ``--pace SECONDS`` serves the same replies from
``paced_upstream.py`` instead, a stream's events one per send, ``SECONDS`` apart, as a
live model streams its tokens (the gateway reads each event alone); being Python, it
serves fewer chat requests a second than nginx, so quote its CPU figures
(``--cpu-only``, ``--callgrind``), not the rate ladder's. The load
generator is this process (aiohttp); on a 2-core machine it shares the CPU with the
gateway, so compare ratios, not rates across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from callgrind import counted_server, find_valgrind
from clients import MAX_TOKENS, MODEL, PROMPT
from servers import (
    Server,
    capture_replies,
    find_nginx,
    mock_server,
    nginx_server,
    openai_shaped,
    paced_server,
)

ROOT = Path(__file__).resolve().parent.parent
GATEWAYS = ("direct", "passthrough", "llmfast", "litellm")
LADDER = (25, 50, 100, 200, 400, 700, 1000, 1400, 2000)
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Endpoint:
    kind: str
    pid: int | None
    url: str  # base URL ending in /v1 for chat
    stream_url: str
    chat_model: str
    stream_model: str
    key: str = "sk-bench"


def _litellm_executable() -> str | None:
    """The ``litellm`` proxy command: ``$LITELLM_BIN`` (LiteLLM in a venv of its own, as
    its pins would fight the test environment's), else beside this interpreter."""
    named = os.environ.get("LITELLM_BIN")
    if named:
        return named if Path(named).exists() else None
    return shutil.which("litellm", path=str(Path(sys.executable).parent))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    import urllib.error
    import urllib.request

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the gateway exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answers (a 4xx is an answer)
        except OSError:
            time.sleep(0.1)  # polling a child's port: there is no event to wait on
    raise RuntimeError(f"{url} did not come up in {timeout} s")


@contextmanager
def _process(command: list[str], ready_url: str, env: dict[str, str]) -> Iterator[int]:
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_ready(proc, ready_url)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Launch:
    """How to start a gateway: its command, environment, readiness URL and endpoint."""

    command: list[str]
    env: dict[str, str]
    ready_url: str
    endpoint: Endpoint


def launch(kind: str, upstream: Server, scratch: Path) -> Launch:
    """The command and endpoint of gateway ``kind`` (not "direct") in front of ``upstream``."""
    root = upstream.url.removesuffix("/v1")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "BENCH_UPSTREAM_KEY": "sk-bench"}
    if kind == "passthrough":
        command = [sys.executable, "benchmarks/passthrough_proxy.py", root, str(port)]
        stream = upstream.stream_url.replace(root, base)
        endpoint = Endpoint(kind, None, base + "/v1", stream, MODEL, MODEL)
        return Launch(command, env, base + "/health", endpoint)
    if kind == "llmfast":
        config = scratch / "gateway.toml"
        config.write_text(
            f'[server]\nlisten = "127.0.0.1:{port}"\n'
            + "".join(
                f'[models.{alias}]\n[[models.{alias}.deployments]]\nbase_url = "{url}"\n'
                f'api_key_env = "BENCH_UPSTREAM_KEY"\nmodel = "{MODEL}"\n'
                for alias, url in (("bench", upstream.url), ("bench-stream", upstream.stream_url))
            )
        )
        command = [sys.executable, "-m", "llmfast", "serve", "--config", str(config)]
        endpoint = Endpoint(kind, None, base + "/v1", base + "/v1", "bench", "bench-stream")
        return Launch(command, env, base + "/health", endpoint)
    if kind == "litellm":
        config = scratch / "litellm.yaml"
        lines = ["model_list:"]
        for alias, url in (("bench", upstream.url), ("bench-stream", upstream.stream_url)):
            lines += [
                f"  - model_name: {alias}",
                "    litellm_params:",
                f"      model: openai/{MODEL}",
                f"      api_base: {url}",
                "      api_key: sk-bench",
            ]
        config.write_text("\n".join(lines) + "\n")
        executable = _litellm_executable()
        assert executable is not None
        command = [executable, "--config", str(config), "--host", "127.0.0.1"]
        command += ["--port", str(port), "--num_workers", "1"]
        master = "sk-" + secrets.token_hex(32)  # it refuses to start without a strong one
        env = {**env, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no fetch from the network at start
        env["LITELLM_MASTER_KEY"] = master
        endpoint = Endpoint(
            kind, None, base + "/v1", base + "/v1", "bench", "bench-stream", key=master
        )
        return Launch(command, env, base + "/health/liveliness", endpoint)
    raise ValueError(kind)


@contextmanager
def gateway(kind: str, upstream: Server, scratch: Path) -> Iterator[Endpoint]:
    if kind == "direct":
        yield Endpoint(kind, None, upstream.url, upstream.stream_url, MODEL, MODEL)
        return
    started = launch(kind, upstream, scratch)
    with _process(started.command, started.ready_url, started.env) as pid:
        started.endpoint.pid = pid
        yield started.endpoint


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and every descendant still running: from
    each thread's ``schedstat`` (nanoseconds) where the kernel has it, else from
    ``stat`` (clock ticks, 10 ms: at 100 streams/s for 3 s that is about 60 ticks a
    gateway, a 2 % step)."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / _TICK
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += _schedstat_cpu(current) or times.get(current, 0.0)
        todo.extend(children.get(current, ()))
    return total


def _schedstat_cpu(pid: int) -> float | None:
    """The CPU seconds of ``pid``'s threads by the scheduler's count (None: not kept)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        ns = sum(int(Path(f"/proc/{pid}/task/{t}/schedstat").read_text().split()[0]) for t in tasks)
    except (OSError, ValueError, IndexError):
        return None
    return ns / 1e9


async def load(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    stream: bool,
    rate: float,
    seconds: float,
    phase: float = 0.0,
) -> tuple[list[float], int]:
    """Send ``rate`` requests per second for ``seconds`` (the schedule ``phase`` of a
    period late); (latencies, errors)."""
    url = (endpoint.stream_url if stream else endpoint.url) + "/chat/completions"
    body = {
        "model": endpoint.stream_model if stream else endpoint.chat_model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
    }
    if stream:
        body["stream"] = True
    headers = {"Authorization": f"Bearer {endpoint.key}"}
    latencies: list[float] = []
    errors = 0

    async def one() -> None:
        nonlocal errors
        began = time.perf_counter()
        try:
            async with session.post(url, json=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
                    return
        except aiohttp.ClientError:
            errors += 1
            return
        latencies.append(time.perf_counter() - began)

    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + (i + phase) / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return latencies, errors


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def measure(
    endpoint: Endpoint,
    rate: float,
    stream_rate: float,
    latency_rate: float,
    seconds: float,
    latency: bool = True,
) -> dict[str, float]:
    """CPU per request at ``rate`` (chat) and ``stream_rate``; latency at ``latency_rate``
    (unless ``latency`` is false)."""
    figures: dict[str, float] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await load(session, endpoint, False, rate, 0.5)  # warm-up: connections, imports
        await load(session, endpoint, True, stream_rate, 0.5)
        for stream in (False, True):
            label = "stream" if stream else "chat"
            before = tree_cpu(endpoint.pid) if endpoint.pid else 0.0
            latencies, errors = await load(
                session, endpoint, stream, stream_rate if stream else rate, seconds
            )
            after = tree_cpu(endpoint.pid) if endpoint.pid else 0.0
            figures[f"{label}_cpu_ms"] = (after - before) / max(1, len(latencies)) * 1000
            figures[f"{label}_errors"] = errors
        for stream in (False, True) if latency else ():  # at a rate every gateway keeps up with
            label = "stream" if stream else "chat"
            latencies, errors = await load(session, endpoint, stream, latency_rate, seconds)
            figures[f"{label}_p50_ms"] = _pct(latencies, 0.5) * 1000
            figures[f"{label}_p99_ms"] = _pct(latencies, 0.99) * 1000
            figures[f"{label}_errors"] += errors
    return figures


async def fixed(endpoint: Endpoint, stream: bool, count: int, concurrency: int) -> int:
    """Send ``count`` requests, ``concurrency`` at a time (closed loop); the errors."""
    url = (endpoint.stream_url if stream else endpoint.url) + "/chat/completions"
    body = {
        "model": endpoint.stream_model if stream else endpoint.chat_model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
        "stream": stream,
    }
    headers = {"Authorization": f"Bearer {endpoint.key}"}
    left = iter(range(count))
    errors = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        for _ in left:
            async with session.post(url, json=body, headers=headers) as response:
                await response.read()
                errors += response.status != 200

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return errors


def callgrind_counts(
    kinds: list[str], upstream: Server, scratch: Path, counts: tuple[int, int], concurrency: int
) -> dict[str, dict[str, float]]:
    """Per gateway and mode: the user-space instructions one more request costs, as
    ``(Ir(long) - Ir(short)) / (long - short)`` over two runs under callgrind."""
    short, long = counts
    figures: dict[str, dict[str, float]] = {}
    for kind in kinds:
        for mode in ("chat", "stream"):
            totals = []
            for count in (short, long):
                started = launch(kind, upstream, scratch)
                with counted_server(started.command, started.env) as counted:
                    _wait_ready(counted.process, started.ready_url, timeout=600)
                    endpoint = started.endpoint
                    errors = asyncio.run(fixed(endpoint, mode == "stream", count, concurrency))
                    if errors:
                        raise RuntimeError(f"{kind} {mode}: {errors} of {count} requests failed")
                assert counted.instructions is not None
                totals.append(counted.instructions)
                print(f"callgrind {kind} {mode} x{count}: {totals[-1]:,} Ir", flush=True)
            figures.setdefault(kind, {})[mode] = (totals[1] - totals[0]) / (long - short)
    return figures


def report_callgrind(
    figures: dict[str, dict[str, float]], counts: tuple[int, int], concurrency: int
) -> None:
    print(
        f"\ncallgrind: user-space instructions per request, (Ir({counts[1]}) - Ir({counts[0]}))"
        f" / {counts[1] - counts[0]}, concurrency {concurrency}\n"
    )
    floor = figures.get("passthrough")
    print("| gateway | chat Ir/request | ÷ pass-through | stream Ir/request | ÷ pass-through |")
    print("|---|--:|--:|--:|--:|")
    for kind, m in figures.items():
        ratios = [f"{m[k] / floor[k]:.2f}x" if floor else "—" for k in ("chat", "stream")]
        print(f"| {kind} | {m['chat']:,.0f} | {ratios[0]} | {m['stream']:,.0f} | {ratios[1]} |")


async def max_rate(endpoint: Endpoint, seconds: float) -> float:
    best = 0.0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for rate in LADDER:
            latencies, errors = await load(session, endpoint, False, rate, seconds)
            if errors or _pct(latencies, 0.99) > 0.050:
                break
            best = rate
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0, help="chat requests per second")
    parser.add_argument(
        "--stream-rate", type=float, default=100.0, help="streams per second (67 chunks each)"
    )
    parser.add_argument(
        "--latency-rate",
        type=float,
        default=50.0,
        help="requests (and streams) per second at which added p50/p99 are measured",
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--gateways", default=",".join(GATEWAYS))
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="count instructions per request under valgrind instead (pass-through, llmfast)",
    )
    parser.add_argument(
        "--cpu-only",
        action="store_true",
        help="only the CPU per request, in --repeats rounds: the ratios per round (each "
        "gateway measured right after the other), their median and spread",
    )
    parser.add_argument(
        "--stream-shape",
        choices=("mock", "openai"),
        default="mock",
        help="the upstream's stream events as the mock server frames them, or padded as"
        " OpenAI's own are (obfuscation, refusal, service_tier)",
    )
    parser.add_argument(
        "--pace",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="a live-shaped upstream instead of nginx: each stream event in its own send,"
        " SECONDS apart (paced_upstream.py), as a model streams its tokens",
    )
    parser.add_argument("--calls", default="100,400", help="callgrind: short,long counts")
    parser.add_argument("--concurrency", type=int, default=8, help="callgrind: in flight")
    args = parser.parse_args()
    kinds = [k for k in args.gateways.split(",") if k]
    if args.callgrind:
        _callgrind_main(args, kinds if "--gateways" in sys.argv else ["passthrough", "llmfast"])
        return
    if "litellm" in kinds and _litellm_executable() is None:
        print("litellm[proxy] is not installed (or LITELLM_BIN): leaving the LiteLLM proxy out")
        kinds.remove("litellm")
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    rates: dict[str, float] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        upstream = start_upstream(stack, args.stream_shape, args.pace)
        if args.cpu_only:
            report_cpu(cpu_rounds(kinds, upstream, Path(scratch), args), args)
            return
        for round_ in range(args.repeats):
            order = kinds[round_ % len(kinds) :] + kinds[: round_ % len(kinds)]
            for kind in order:
                with gateway(kind, upstream, Path(scratch)) as endpoint:
                    results[kind].append(
                        asyncio.run(
                            measure(
                                endpoint,
                                args.rate,
                                args.stream_rate,
                                args.latency_rate,
                                args.seconds,
                            )
                        )
                    )
                    if round_ == 0:
                        rates[kind] = asyncio.run(max_rate(endpoint, 2.0))
                print(f"round {round_ + 1}: {kind} done", flush=True)
    report(results, rates, args, upstream.kind)


def cpu_rounds(
    kinds: list[str], upstream: Server, scratch: Path, args: argparse.Namespace
) -> dict[str, list[dict[str, float]]]:
    """``--cpu-only``: every gateway started once and kept running, then ``--repeats``
    rounds in which the gateways are loaded at the same time, each at the given rates
    (their schedules spread over the period), and each one's CPU is read over the same
    seconds: a change in the machine's state (other jobs, the clock) falls on all of
    them alike. The LiteLLM proxy, which cannot keep up with these rates, is measured
    alone after them in each round."""
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    together = [k for k in kinds if k not in ("direct", "litellm")]
    alone = [k for k in kinds if k == "litellm"]
    with ExitStack() as running:
        endpoints = {k: running.enter_context(gateway(k, upstream, scratch)) for k in kinds}
        for round_ in range(args.repeats):
            for group in ([together] if together else []) + [[k] for k in alone]:
                loaded = {k: endpoints[k] for k in group}
                rates = (args.rate, args.stream_rate)
                figures = asyncio.run(cpu_together(loaded, *rates, args.seconds))
                for kind, measured in figures.items():
                    results[kind].append(measured)
            print(f"round {round_ + 1} done", flush=True)
    return {k: v for k, v in results.items() if v}


async def cpu_together(
    endpoints: dict[str, Endpoint], rate: float, stream_rate: float, seconds: float
) -> dict[str, dict[str, float]]:
    """Each gateway's CPU per request while all of them take ``rate`` chat requests/s
    (then ``stream_rate`` streams/s) at once, for ``seconds``."""
    figures: dict[str, dict[str, float]] = {k: {} for k in endpoints}
    spread = len(endpoints)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for endpoint in endpoints.values():  # warm-up: connections, imports
            await load(session, endpoint, False, rate, 0.5)
            await load(session, endpoint, True, stream_rate, 0.5)
        for stream in (False, True):
            label = "stream" if stream else "chat"
            pace = stream_rate if stream else rate
            before = {k: tree_cpu(e.pid) for k, e in endpoints.items() if e.pid}
            runs = await asyncio.gather(
                *(
                    load(session, e, stream, pace, seconds, phase=i / spread)
                    for i, e in enumerate(endpoints.values())
                )
            )
            for (kind, endpoint), (latencies, errors) in zip(endpoints.items(), runs, strict=True):
                used = tree_cpu(endpoint.pid) - before[kind] if endpoint.pid else 0.0
                figures[kind][f"{label}_cpu_ms"] = used / max(1, len(latencies)) * 1000
                figures[kind][f"{label}_errors"] = errors
    return figures


def start_upstream(stack: ExitStack, shape: str, pace: float = 0.0) -> Server:
    """The upstream: nginx serving the mock server's replies (its stream in ``shape``),
    or the mock server itself when nginx is missing; with ``pace``, the paced upstream
    serving them (a stream's events one per send, ``pace`` seconds apart)."""
    mock = stack.enter_context(mock_server(chunks=64))
    if pace:
        replies = capture_replies(mock.url)
        if shape == "openai":
            replies["stream.sse"] = openai_shaped(replies["stream.sse"])
        return stack.enter_context(paced_server(replies, pace))
    if not find_nginx():
        if shape != "mock":
            raise SystemExit("--stream-shape openai needs nginx (Debian: nginx-light)")
        return mock
    replies = capture_replies(mock.url)
    if shape == "openai":
        replies["stream.sse"] = openai_shaped(replies["stream.sse"])
    return stack.enter_context(nginx_server(replies))


def _callgrind_main(args: argparse.Namespace, kinds: list[str]) -> None:
    if find_valgrind() is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    short, long = (int(n) for n in args.calls.split(","))
    kinds = [k for k in kinds if k != "direct"]
    with ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        upstream = start_upstream(stack, args.stream_shape, args.pace)
        figures = callgrind_counts(kinds, upstream, Path(scratch), (short, long), args.concurrency)
    report_callgrind(figures, (short, long), args.concurrency)


def report(
    results: dict[str, list[dict[str, float]]],
    rates: dict[str, float],
    args: argparse.Namespace,
    upstream: str,
) -> None:
    median = {
        kind: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for kind, runs in results.items()
    }
    direct = median.get("direct")
    print(
        f"\nupstream: {upstream}; CPU at {args.rate:.0f} chat requests/s and "
        f"{args.stream_rate:.0f} streams/s, latency at {args.latency_rate:.0f}/s, "
        f"{args.seconds:.0f} s each; medians of {args.repeats} interleaved rounds\n"
    )
    print(
        "| gateway | added p50 ms | added p99 ms | stream added p50 / p99 ms | "
        "CPU ms/request (chat / stream) | max rate, p99 < 50 ms |"
    )
    print("|---|---|---|---|---|---|")
    for kind, m in median.items():
        add = {k: m[k] - direct[k] if direct else m[k] for k in m if k.endswith("_ms")}
        cpu = "—" if kind == "direct" else f"{m['chat_cpu_ms']:.3f} / {m['stream_cpu_ms']:.3f}"
        print(
            f"| {kind} | {add['chat_p50_ms']:.2f} | {add['chat_p99_ms']:.2f} | "
            f"{add['stream_p50_ms']:.2f} / {add['stream_p99_ms']:.2f} | {cpu} | "
            f"{rates.get(kind, 0):.0f}/s |"
        )
    floor = median.get("passthrough")
    ours = median.get("llmfast")
    if floor and ours:
        for label in ("chat", "stream"):
            ratio = ours[f"{label}_cpu_ms"] / floor[f"{label}_cpu_ms"]
            print(f"\nllmfast serve / pass-through floor, CPU per {label} request: {ratio:.2f}x")
    litellm = median.get("litellm")
    if litellm and ours:
        for label in ("chat", "stream"):
            ratio = litellm[f"{label}_cpu_ms"] / ours[f"{label}_cpu_ms"]
            print(f"LiteLLM proxy / llmfast serve, CPU per {label} request: {ratio:.1f}x")


def report_cpu(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    """``--cpu-only``: the CPU per request of each gateway, and llmfast's ratio to the
    pass-through per round (the two measured over the same seconds, so a change in the
    machine's state moves both), with the median and spread of those."""
    paced = f", the upstream's stream events one per send, {args.pace * 1000:g} ms apart"
    print(
        f"\nCPU per request at {args.rate:.0f} chat requests/s and {args.stream_rate:.0f} "
        f"streams/s each, {args.seconds:.0f} s, {args.repeats} rounds, the gateways loaded "
        f"at the same time{paced if args.pace else ''}\n"
    )
    print("| gateway | chat ms/request, median (min-max) | stream ms/request, median (min-max) |")
    print("|---|--:|--:|")
    for kind, runs in results.items():
        cells = []
        for label in ("chat", "stream"):
            values = [r[f"{label}_cpu_ms"] for r in runs]
            cells.append(f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})")
        print(f"| {kind} | {cells[0]} | {cells[1]} |")
    pairs = [("llmfast", "passthrough"), ("litellm", "llmfast")]
    for ours, base in pairs:
        if ours not in results or base not in results:
            continue
        for label in ("chat", "stream"):
            key = f"{label}_cpu_ms"
            ratios = [a[key] / b[key] for a, b in zip(results[ours], results[base], strict=True)]
            shown = ", ".join(f"{r:.2f}" for r in ratios)
            print(
                f"\n{ours} / {base}, CPU per {label} request: median "
                f"{statistics.median(ratios):.2f}x (rounds: {shown})"
            )


if __name__ == "__main__":
    main()
