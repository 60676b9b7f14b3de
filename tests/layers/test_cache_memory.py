"""``MemoryStore.max_bytes`` bounds the memory its entries take, not just their values.

Measured with ``tracemalloc``, which counts every byte Python allocates for the
store's keys, values and bookkeeping: deterministic, unlike RSS.
"""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from llmfast.layers.cache_stores import ENTRY_OVERHEAD, MemoryStore, entry_size

BOUND = 1 << 20


@pytest.mark.parametrize("ttl", [None, 60.0])
@pytest.mark.parametrize("value_size", [16, 300, 20_000])
async def test_memory_follows_the_bound_for_many_entries(
    ttl: float | None, value_size: int
) -> None:
    """Request keys (40 hex digits) with values from tiny to large, many more than
    fit, read now and then: what the store holds stays within its bound (and uses
    most of it)."""
    n = max(3 * BOUND // (value_size + 100), 500)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = MemoryStore(max_entries=10**9, max_bytes=BOUND)
        held = []
        for i in range(n):
            await store.set(f"{i:040x}", bytes([i % 251]) * value_size, ttl)
            if i % 7 == 0:
                await store.get(f"{i // 2:040x}")
            if i % 500 == 0 or i == n - 1:
                held.append(tracemalloc.get_traced_memory()[0] - before)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert store.size_bytes <= BOUND
    assert max(held) <= BOUND, f"held {max(held) / BOUND:.2f}x the bound"
    assert peak <= 1.1 * BOUND  # a dict's resize holds both tables for a moment
    assert held[-1] >= 0.75 * BOUND  # the bound is used, not wasted on a too-big estimate
    assert store.size_bytes == sum(
        entry_size(f"{i:040x}", bytes(value_size))
        for i in range(n)
        if f"{i:040x}" in store._entries
    )


async def test_small_entries_are_counted_whole() -> None:
    store = MemoryStore(max_entries=10**9, max_bytes=100 * entry_size("k" * 40, b"v"))
    for i in range(1000):
        await store.set(f"{i:040d}", b"v", None)
    assert len(store) == 100  # values alone (1 byte each) would have let all 1000 in
    assert store.size_bytes == 100 * entry_size("k" * 40, b"v")
    assert entry_size("k", b"") > ENTRY_OVERHEAD


async def test_an_expired_entry_is_dropped_when_read_and_frees_its_bytes() -> None:
    now = [0.0]
    store = MemoryStore(clock=lambda: now[0])
    await store.set("a", b"x" * 100, 10.0)
    await store.set("b", b"y", None)
    now[0] = 10.0
    assert await store.get("a") is None
    assert store.size_bytes == entry_size("b", b"y")
    assert len(store) == 1
    await store.set("b", b"yy", None)  # replacing an entry counts it once
    assert store.size_bytes == entry_size("b", b"yy")
