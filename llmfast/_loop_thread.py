"""The private event loop a [SyncClient][llmfast.SyncClient] runs its async client on:
a daemon thread, calls handed over with ``run_coroutine_threadsafe``, a deadlock check,
and the shutdown that also runs at garbage collection."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from llmfast import _serving
from llmfast.errors import ClientClosedError

if TYPE_CHECKING:
    from llmfast.client import Client

__all__ = ["LoopThread", "local_ports", "shutdown"]

T = TypeVar("T")


class LoopThread:
    """An event loop running forever on a daemon thread, until ``stop()``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.leftover_tasks = 0
        """How many tasks were still pending when the loop stopped (cancelled then)."""
        self.stopping = False
        self.local_ports: tuple[int, ...] = ()
        """Ports on this machine the client calls (checked for a deadlock)."""
        self._accepting = True
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="llmfast-sync-loop", daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], *, closing: bool = False) -> T:
        """Run ``coro`` on the loop and wait for its result in the calling thread
        (``closing``: it needs no server, so it cannot deadlock)."""
        if self.local_ports and not closing:
            caller = asyncio._get_running_loop()
            if caller is not None and caller is not self.loop:
                port = _serving.served_by(caller, self.local_ports)
                if port is not None:
                    coro.close()
                    raise RuntimeError(_deadlock_message(port))
        with self._lock:
            if not self._accepting or threading.current_thread() is self.thread:
                coro.close()
                if self._accepting:
                    raise RuntimeError("a SyncClient cannot be called from its own event loop")
                raise ClientClosedError("the client is closed; create a new SyncClient")
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if self.stopping:
                raise ClientClosedError("the client was closed during the call") from None
            raise
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt while waiting: cancel the call too
            raise

    def _run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            with self._lock:
                self._accepting = False
            loop.run_until_complete(asyncio.sleep(0))  # calls already submitted get a task
            tasks = asyncio.all_tasks(loop)
            self.leftover_tasks = len(tasks)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()

    def stop(self) -> None:
        """Stop the loop and wait for its thread (unless called from that thread)."""
        with self._lock:
            if self.stopping:
                return
            self.stopping = True
            self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join()


def _deadlock_message(port: int) -> str:
    return (
        f"this SyncClient call would wait forever: the server on port {port} is run by the "
        "event loop of this very thread, which cannot answer while the thread waits. "
        "Use the async llmfast.Client with `await` here, or run the server on a thread "
        "of its own: `with MockServer.in_thread() as server:`"
    )


def local_ports(client: Client) -> tuple[int, ...]:
    port = _serving.loopback_target(getattr(client.backend, "base_url", None))
    return () if port is None else (port,)


def shutdown(state: dict[str, Any]) -> None:
    """Close the client and stop the loop; runs from ``close()`` or at garbage collection
    or interpreter exit (so it must not refer to the ``SyncClient``)."""
    state["closed"] = True
    runner: LoopThread | None = state.pop("runner", None)
    if runner is None:
        return
    client: Client | None = state.pop("client", None)
    if client is None:
        runner.stop()
    elif threading.current_thread() is runner.thread:  # collected on the loop itself
        closing = runner.loop.create_task(client.aclose())
        closing.add_done_callback(lambda _: runner.stop())
    else:
        try:
            runner.call(client.aclose(), closing=True)
        finally:
            runner.stop()
