"""The floor of a Python gateway: a bare aiohttp pass-through proxy.

``python benchmarks/passthrough_proxy.py UPSTREAM_ROOT PORT``: every request is sent
to ``UPSTREAM_ROOT + path`` with its body and content type, and the answer's bytes are
copied back as they arrive (``iter_any``) — no parsing, no auth, no layers. What a
gateway spends beyond this is what its features cost. SIGTERM stops it cleanly (so a
run under callgrind writes its totals).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

import aiohttp
from aiohttp import web


async def main(upstream: str, port: int) -> None:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        async with session.request(
            request.method, upstream + request.path, data=body, headers=headers
        ) as answer:
            out = web.StreamResponse(
                status=answer.status,
                headers={"Content-Type": answer.headers.get("Content-Type", "")},
            )
            await out.prepare(request)
            async for data in answer.content.iter_any():
                await out.write(data)
            await out.write_eof()
            return out

    server = web.Server(handle)
    runner = web.ServerRunner(server)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"passthrough proxy on http://127.0.0.1:{port}/v1", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await session.close()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(sys.argv[1], int(sys.argv[2])))
