"""The Redis test fixture starts a real redis-server that answers."""

from __future__ import annotations

import redis.asyncio as redis


async def test_redis_smoke(redis_url: str) -> None:
    client = redis.from_url(redis_url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()
