"""``OpenAI``: the SDK's blocking client, on the [`SyncClient`][llmfast.SyncClient]
machinery: the async facade's calls run on the client's loop thread."""

from __future__ import annotations

from collections.abc import Coroutine, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from llmfast.openai import types as t
from llmfast.openai._client import AsyncOpenAI
from llmfast.openai._config import NOT_GIVEN, Options, build
from llmfast.openai._parse import ChatCompletionStream, ChatCompletionStreamManager
from llmfast.openai._stream import AsyncStream, Stream
from llmfast.sync import SyncClient
from llmfast.sync_stream import Closing, steps
from llmfast.transport import Layer

__all__ = ["OpenAI"]

T = TypeVar("T")


class OpenAI(Closing):
    """The ``openai`` SDK's ``OpenAI`` (blocking), running on llmfast.

    Takes the arguments of [`AsyncOpenAI`][llmfast.openai.AsyncOpenAI]; ``client=``
    wraps an llmfast [`SyncClient`][llmfast.SyncClient]. Safe to share between threads.
    Use it as ``with OpenAI() as client:`` or call ``close()``.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        base_url: str | None = None,
        timeout: Any = NOT_GIVEN,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, object] | None = None,
        layers: Sequence[Layer] | None = None,
        client: SyncClient | None = None,
        **client_options: Any,
    ) -> None:
        built = build(
            SyncClient,
            client,
            client_options,
            api_key=api_key,
            organization=organization,
            project=project,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            default_query=default_query,
            layers=layers,
        )
        self._setup(built.client, built.options, owns=built.owns)
        if built.base_url is not None:
            self.base_url = built.base_url

    def _setup(self, sync: SyncClient, options: Options, *, owns: bool) -> None:
        self._sync = sync
        self._options = options
        self._owns = owns
        self._async: AsyncOpenAI | None = None
        completions = Completions(self)
        self.chat = Chat(completions)
        self.beta = Beta(self.chat)
        self.embeddings = Embeddings(self)
        self.models = Models(self)

    def _facade(self) -> AsyncOpenAI:
        made = self._async
        if made is None:  # the Client exists once the loop thread has started
            made = self._async = AsyncOpenAI._over(self._sync.client, self._options, self._owns)
        return made

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._sync._run(coro)

    @property
    def sync_client(self) -> SyncClient:
        """The llmfast [`SyncClient`][llmfast.SyncClient] underneath."""
        return self._sync

    def with_options(self, **options: Any) -> OpenAI:
        """A copy sharing this client's connections, with other per-call defaults
        (``timeout``, ``max_retries``, ``default_headers``)."""
        derived = self._facade().with_options(**options)
        made = OpenAI.__new__(OpenAI)
        made._setup(self._sync, derived._options, owns=self._owns)
        made._async = derived
        return made

    copy = with_options

    def close(self) -> None:
        """Close the connections and stop the loop thread (a wrapped ``client=`` stays open)."""
        if self._owns:
            self._sync.close()

    def is_closed(self) -> bool:
        """True once the client is closed."""
        return self._sync.closed

    def __repr__(self) -> str:
        return f"<llmfast.openai.OpenAI {self._sync!r}>"


class Completions:
    """``client.chat.completions``."""

    def __init__(self, owner: OpenAI) -> None:
        self._owner = owner

    def create(self, **params: Any) -> Any:
        """See [`AsyncCompletions.create`][llmfast.openai._client.AsyncCompletions.create];
        with ``stream=True``, a [`Stream`][llmfast.openai.Stream]."""
        owner = self._owner
        result = owner._run(owner._facade().chat.completions.create(**params))
        if isinstance(result, AsyncStream):
            return Stream(owner._run, result)
        return result

    def parse(self, **params: Any) -> t.ParsedChatCompletion[Any]:
        """See [`AsyncCompletions.parse`][llmfast.openai._client.AsyncCompletions.parse]."""
        owner = self._owner
        return owner._run(owner._facade().chat.completions.parse(**params))

    def stream(self, **params: Any) -> SyncStreamManager:
        """``with client.chat.completions.stream(...) as stream: for event in stream``."""
        return SyncStreamManager(
            self._owner, self._owner._facade().chat.completions.stream(**params)
        )


class SyncStreamManager:
    """The blocking stream manager: events and ``get_final_completion()``."""

    def __init__(self, owner: OpenAI, manager: ChatCompletionStreamManager) -> None:
        self._owner = owner
        self._manager = manager
        self._stream: ChatCompletionStream | None = None

    def __enter__(self) -> SyncStreamManager:
        self._stream = self._owner._run(self._manager.__aenter__())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._owner._run(self._manager.__aexit__(exc_type, exc, tb))

    def __iter__(self) -> Iterator[Any]:
        assert self._stream is not None, "use `with client.chat.completions.stream(...)`"
        yield from steps(self._owner._run, self._stream.__aiter__())

    def get_final_completion(self) -> t.ParsedChatCompletion[Any]:
        """The whole completion, with ``parsed`` filled in."""
        assert self._stream is not None, "use `with client.chat.completions.stream(...)`"
        return self._owner._run(self._stream.get_final_completion())


class Chat:
    """``client.chat``."""

    def __init__(self, completions: Completions) -> None:
        self.completions = completions


class Beta:
    """``client.beta``."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat


class Embeddings:
    """``client.embeddings``."""

    def __init__(self, owner: OpenAI) -> None:
        self._owner = owner

    def create(self, **params: Any) -> t.CreateEmbeddingResponse:
        """See [`AsyncEmbeddings.create`][llmfast.openai._client.AsyncEmbeddings.create]."""
        owner = self._owner
        return owner._run(owner._facade().embeddings.create(**params))


class Models:
    """``client.models``."""

    def __init__(self, owner: OpenAI) -> None:
        self._owner = owner

    def list(self, **options: Any) -> t.ModelsPage:
        """The models: a page with ``.data``, iterable."""
        owner = self._owner
        page: t.ModelsPage = owner._run(_awaited(owner._facade().models.list(**options)))
        return page


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
