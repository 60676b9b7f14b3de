"""How the facade's constructor arguments, named as the ``openai`` SDK names them, become
an llmfast backend, layers and timeouts; the SDK's ``NOT_GIVEN`` sentinel."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from llmfast.backends.openai import DEFAULT_BASE_URL, OpenAIBackend
from llmfast.errors import ConfigurationError
from llmfast.layers.retry import Retry
from llmfast.openai._exceptions import OpenAIError
from llmfast.openai._retries import Retries
from llmfast.pool import Timeouts
from llmfast.transport import Layer
from llmfast.types import ChatRequest

__all__ = [
    "NOT_GIVEN",
    "Built",
    "NotGiven",
    "Options",
    "Settings",
    "build",
    "settings",
    "split_params",
]

DEFAULT_MAX_RETRIES = 2
C = TypeVar("C")


class NotGiven:
    """The SDK's "argument not given" sentinel (``openai.NOT_GIVEN``, ``openai.omit``)."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


@dataclass(frozen=True)
class Options:
    """What ``with_options`` changes per client copy: the per-call defaults."""

    timeout: float | None = None
    max_retries: int | None = None  # None: the client's own Retry layer decides
    headers: Mapping[str, str] | None = None


@dataclass
class Settings:
    """A facade client's llmfast parts, resolved from the SDK-named arguments."""

    backend: OpenAIBackend
    layers: list[Layer]
    timeouts: Timeouts | None
    options: Options
    headers: dict[str, str] = field(default_factory=dict)


def seconds(timeout: Any) -> float | None:
    """A per-call ``timeout``: a number, ``None``, or an ``httpx.Timeout``-like object
    (its ``read`` value; the call's total deadline in llmfast)."""
    if timeout is None or isinstance(timeout, int | float):
        return None if timeout is None else float(timeout)
    read = getattr(timeout, "read", None)
    if read is None and not hasattr(timeout, "read"):
        raise ConfigurationError(f"timeout must be a number or an httpx.Timeout, got {timeout!r}")
    return None if read is None else float(read)


def settings(
    *,
    api_key: str | None,
    organization: str | None,
    project: str | None,
    base_url: str | None,
    timeout: Any,
    max_retries: int | None,
    default_headers: Mapping[str, str] | None,
    default_query: Mapping[str, object] | None,
    layers: Sequence[Layer] | None,
) -> Settings:
    """Resolve the constructor arguments as the SDK does (``$OPENAI_API_KEY``,
    ``$OPENAI_BASE_URL``, ``$OPENAI_ORG_ID``, ``$OPENAI_PROJECT_ID``)."""
    if default_query:
        raise ConfigurationError("llmfast.openai does not support default_query")
    api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
    if api_key is None:
        raise OpenAIError(
            "The api_key client option must be set either by passing api_key to the client "
            "or by setting the OPENAI_API_KEY environment variable"
        )
    if base_url is None:
        base_url = os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    organization = organization or os.environ.get("OPENAI_ORG_ID")
    project = project or os.environ.get("OPENAI_PROJECT_ID")
    headers = {k: v for k, v in (default_headers or {}).items() if isinstance(v, str)}
    backend = OpenAIBackend(
        str(base_url).rstrip("/"),
        api_key=api_key,
        headers=headers,
        organization=organization,
        project=project,
    )
    chosen = list(layers or ())
    if any(isinstance(layer, Retry | Retries) for layer in chosen):
        if max_retries is not None:
            raise ConfigurationError("pass max_retries= or a Retry layer in layers=, not both")
    else:
        chosen.append(Retries(DEFAULT_MAX_RETRIES if max_retries is None else max_retries))
    timeouts: Timeouts | None = None
    per_call: float | None = None
    if isinstance(timeout, NotGiven) or timeout is None:
        pass
    elif isinstance(timeout, int | float):
        per_call = float(timeout)
    else:  # an httpx.Timeout: connect and read map onto llmfast's own timeouts
        read = getattr(timeout, "read", None)
        timeouts = Timeouts(connect=getattr(timeout, "connect", None), read=read, idle=read)
    return Settings(backend, chosen, timeouts, Options(timeout=per_call), headers)


@dataclass(frozen=True)
class Built(Generic[C]):
    """What a facade client runs on: the llmfast client, its per-call options, whether
    the facade owns (and so closes) it, and the base URL when the facade built it."""

    client: C
    options: Options
    owns: bool
    base_url: str | None


def build(
    factory: Callable[..., C],
    client: C | None,
    client_options: Mapping[str, Any],
    **arguments: Any,
) -> Built[C]:
    """The constructor of ``AsyncOpenAI`` and ``OpenAI``: ``client=`` wrapped as it is
    (with nothing else but ``timeout``), or ``factory`` (``Client``, ``SyncClient``) called
    with what the SDK-named ``arguments`` of ``settings`` resolve to."""
    if client is not None:
        given = [v for k, v in arguments.items() if k not in _WITH_CLIENT]
        if any(v is not None for v in given) or client_options:
            name = getattr(factory, "__name__", "client")
            raise ConfigurationError(f"client= wraps a {name} as it is: pass nothing else")
        timeout = arguments.get("timeout", NOT_GIVEN)
        per_call = None if timeout is NOT_GIVEN else seconds(timeout)
        return Built(client, Options(timeout=per_call), False, None)
    made = settings(**arguments)
    core = factory(made.backend, layers=made.layers, timeouts=made.timeouts, **client_options)
    return Built(core, made.options, True, made.backend.base_url)


_WITH_CLIENT = frozenset({"timeout", "default_query"})
"""The arguments ``client=`` goes with (``default_query`` is ignored there, as it was)."""


_TYPED = frozenset(ChatRequest.__struct_fields__) - {"model", "messages", "extra_body"}


def split_params(params: Mapping[str, Any], extra_body: Mapping[str, Any] | None) -> dict[str, Any]:
    """The keyword arguments of ``Client.chat`` for the SDK's: llmfast's typed
    parameters as they are, any other (``metadata``, ``store``, ``logit_bias``...) and
    ``extra_body`` into ``extra_body``; ``NOT_GIVEN`` values dropped."""
    typed: dict[str, Any] = {}
    extra: dict[str, Any] | None = None
    for key, value in params.items():
        if value is NOT_GIVEN:
            continue
        if key in _TYPED:
            typed[key] = value
        else:
            if extra is None:
                extra = {}
            extra[key] = value
    if extra_body:
        for key, value in extra_body.items():
            if key in _TYPED:
                typed[key] = value  # the SDK lets extra_body override a parameter
            else:
                if extra is None:
                    extra = {}
                extra[key] = value
    if extra:
        typed["extra_body"] = extra
    return typed
