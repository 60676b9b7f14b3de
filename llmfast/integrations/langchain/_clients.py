"""The llmfast clients behind a LangChain model: one async ``Client`` per event loop,
one ``SyncClient`` for the blocking calls, built from the same settings on first use.

An aiohttp session belongs to the event loop it was opened on, so an async ``Client``
made by the model serves the loop it was made on only; a model called from
``asyncio.run(...)`` twice gets one client per run. Each such client is closed when its
loop shuts down: a tiny async generator, started on the loop, holds it, and
``loop.shutdown_asyncgens()`` (run by ``asyncio.run``, ``asyncio.Runner`` and
pytest-asyncio at the end of a loop) closes that generator, whose ``finally`` closes the
client; so does a task scheduled on the loop when the model is garbage-collected
first. The ``SyncClient`` runs on its own loop thread and is closed when the model is
garbage-collected, at exit, or by [close][llmfast.integrations.langchain.ChatLLMFast.close].

A client passed in by the user (``client=``) is theirs: it is used as given and never
closed here. A ``Client`` serves the async calls; a ``SyncClient`` the blocking ones
(its async calls then run it on a worker thread, LangChain's default).
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import AsyncGenerator
from typing import Any

from pydantic import SecretStr

from llmfast.client import Client
from llmfast.credentials import KEY_VARIABLES
from llmfast.errors import ConfigurationError
from llmfast.providers import backend_for, parse_provider
from llmfast.sync import SyncClient

__all__ = ["Clients", "connect"]

_CONNECTION = ("provider", "base_url", "api_key", "default_headers", "layers", "max_retries")


def connect(model: Any) -> tuple[Clients, str | None]:
    """The clients of a LangChain model with llmfast's connection fields, and the
    backend's kind (``None`` until known when a client was given). Checks the settings
    and the credentials now, as ``Client(...)`` does."""
    given = model.client
    if given is not None:
        if not isinstance(given, (Client, SyncClient)):
            raise ConfigurationError(
                f"client= takes an llmfast Client or SyncClient, not {type(given).__name__}"
            )
        clash = [name for name in _CONNECTION if getattr(model, name) is not None]
        if clash:
            raise ConfigurationError(
                f"pass {', '.join(clash)} to the llmfast client, not beside client="
            )
        return Clients(given, {}), given.backend.kind if isinstance(given, Client) else None
    if model.api_key is None:
        model.api_key = _key_from_env(model.provider)
    key = None if model.api_key is None else model.api_key.get_secret_value()
    backend = backend_for(
        model.provider,
        base_url=model.base_url,
        api_key=key,
        model=model.model,
        headers=model.default_headers,
    )
    if model.model is None:
        model.model = backend.model or os.environ.get("LLMFAST_MODEL") or None
    settings = {
        "provider": model.provider,
        "base_url": model.base_url,
        "api_key": key,
        "model": model.model,
        "headers": model.default_headers,
        "layers": model.layers,
        "max_retries": model.max_retries,
    }
    return Clients(None, settings), backend.kind


def _key_from_env(provider: str | None) -> SecretStr | None:
    name, _ = parse_provider(provider or os.environ.get("LLMFAST_PROVIDER") or "openai")
    for variable in KEY_VARIABLES.get(name, ()):
        value = os.environ.get(variable)
        if value:
            return SecretStr(value)
    return None


_open: set[AsyncGenerator[None, None]] = set()
"""Every closer not yet closed: held here, so that a client never dies with the model
that made it (it is closed, properly, by its closer)."""
_closing: set[asyncio.Task[None]] = set()


async def _closer(client: Client, me: list[Any]) -> AsyncGenerator[None, None]:
    """Suspended until its loop shuts its async generators down (or the model that made
    ``client`` is collected), then closes ``client``."""
    try:
        yield
    finally:
        _open.discard(me[0])
        await client.aclose()


def _close_later(closer: AsyncGenerator[None, None]) -> None:
    task = asyncio.ensure_future(closer.aclose())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


def _release(loops: weakref.WeakKeyDictionary[Any, Any]) -> None:
    """A collected model's clients: closed on their loops, which are still running."""
    for loop, (_, closer) in list(loops.items()):
        if not loop.is_closed():
            loop.call_soon_threadsafe(_close_later, closer)


class Clients:
    """The clients of one LangChain model (see the module)."""

    __slots__ = ("__weakref__", "_given", "_lock", "_loops", "_settings", "_sync")

    def __init__(self, given: Client | SyncClient | None, settings: dict[str, Any]) -> None:
        self._given = given
        self._settings = settings
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[Client, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()
        self._sync: SyncClient | None = None
        self._lock = threading.Lock()
        weakref.finalize(self, _release, self._loops)

    @property
    def has_async(self) -> bool:
        """False when the user gave a ``SyncClient``: async calls then go to a thread."""
        return not isinstance(self._given, SyncClient)

    async def client(self) -> Client:
        """The async client for the running loop."""
        given = self._given
        if given is not None:
            if isinstance(given, Client):
                return given
            raise ConfigurationError("a SyncClient serves blocking calls only")
        loop = asyncio.get_running_loop()
        entry = self._loops.get(loop)
        if entry is not None:
            return entry[0]
        client = Client(**self._settings)
        me: list[Any] = []
        closer = _closer(client, me)
        me.append(closer)
        _open.add(closer)
        await closer.__anext__()  # now registered with this loop's shutdown_asyncgens()
        self._loops[loop] = (client, closer)
        return client

    def sync_client(self) -> SyncClient:
        """The blocking client (made on first use, shared by every thread)."""
        given = self._given
        if given is not None:
            if isinstance(given, SyncClient):
                return given
            raise ConfigurationError(
                "this model was made from an async llmfast.Client, which serves its own "
                "event loop only: use ainvoke/astream/abatch, or pass "
                "client=llmfast.SyncClient(...) (or the settings instead of a client) "
                "for invoke/stream/batch"
            )
        sync = self._sync
        if sync is None:
            with self._lock:
                sync = self._sync
                if sync is None:
                    sync = self._sync = SyncClient(**self._settings)
        return sync

    async def aclose(self) -> None:
        """Close the client this model made for the running loop (a given one is kept)."""
        entry = self._loops.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[1].aclose()

    def close(self) -> None:
        """Close the blocking client this model made (a given one is kept)."""
        with self._lock:
            sync, self._sync = self._sync, None
        if sync is not None:
            sync.close()
