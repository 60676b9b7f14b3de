"""The gateway's configuration: a TOML file, read with the standard library and checked
before anything starts.

```toml
[server]
listen = "127.0.0.1:4000"
max_body_bytes = 4_000_000          # a larger request body gets 413
grace = 30                          # seconds SIGTERM lets in-flight calls finish
redis_url_env = "GATEWAY_REDIS_URL"  # optional: limits, caches, coalescing shared by every process

[models.fast]                       # the name clients send as "model"
strategy = "priority"               # or "weighted", "least_busy"
cache = { ttl = 600 }               # or true; off when absent
coalesce = true
retry = { max_attempts = 3 }        # or an int (attempts); 3 when absent, 1 turns it off
breaker = { consecutive = 5, cooldown = 15 }
rpm = 3000                          # the model's own limits, across every tenant
tpm = 1_000_000
timeout = 120                       # seconds a whole call may take
idle_timeout = 60                   # seconds a stream may go between two events
first_chunk_timeout = 30            # seconds a stream may take to its first event

[[models.fast.deployments]]
provider = "openai"                 # openai, anthropic, ollama, gemini
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"      # the variable holding its key (never the key itself)
model = "gpt-4o-mini"
priority = 0                        # lower first ("priority"); weight for "weighted"

[keys.team-a]                       # a tenant
key_env = "TEAM_A_KEY"              # or key_sha256 = "<hex digest of the key>"
models = ["fast"]                   # the models it may use; every model when absent
rpm = 600                           # over its quota a tenant gets 429 at once,
tpm = 200_000                       # unless max_wait = seconds it may queue
budget_usd = 50.0                   # or budget_tokens; stops calls before they overspend
budget_period = 86_400              # seconds per budget window; in total when absent
```

A file that breaks a rule is refused with
[`GatewayConfigError`][llmfast.gateway.GatewayConfigError], naming the file, the line
and the reason.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from llmfast.errors import ConfigurationError
from llmfast.providers import PROVIDERS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 reads TOML with the tomli backport
    import tomli as tomllib

__all__ = [
    "CacheConfig",
    "Deployment",
    "GatewayConfig",
    "GatewayConfigError",
    "KeyConfig",
    "ModelConfig",
    "ServerConfig",
    "load_config",
    "parse_config",
]


_T = TypeVar("_T")


class GatewayConfigError(ConfigurationError):
    """The gateway's configuration is invalid; the message names the file, line and reason."""


class _Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of the config tables: an unknown key is an error (a typo must not pass)."""


class ServerConfig(_Config):
    """The ``[server]`` table."""

    listen: str = "127.0.0.1:4000"
    max_body_bytes: int = 4_000_000
    grace: float = 30.0
    access_log: bool | str = True
    metrics: bool = True
    redis_url_env: str | None = None


class Deployment(_Config):
    """One upstream of a model: ``[[models.NAME.deployments]]``."""

    model: str
    provider: str = "openai"
    base_url: str | None = None
    api_key_env: str | None = None
    weight: float = 1.0
    priority: int = 0


class CacheConfig(_Config):
    """A model's response cache (memory, shared by every tenant)."""

    ttl: float = 600.0
    max_entries: int = 10_000


class RetryConfig(_Config):
    """A model's retries (see [`RetryPolicy`][llmfast.layers.RetryPolicy])."""

    max_attempts: int = 3


class BreakerConfig(_Config):
    """The circuit breaker in front of each deployment."""

    consecutive: int = 5
    cooldown: float = 15.0


class ModelConfig(_Config):
    """A model alias: ``[models.NAME]``."""

    deployments: list[Deployment]
    strategy: Literal["priority", "weighted", "least_busy"] = "priority"
    cache: CacheConfig | bool = False
    coalesce: bool = False
    retry: RetryConfig | int = 3
    breaker: BreakerConfig | bool = True
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    timeout: float | None = 600.0
    idle_timeout: float | None = 600.0
    first_chunk_timeout: float | None = None


class KeyConfig(_Config):
    """A virtual key (a tenant): ``[keys.NAME]``."""

    key_env: str | None = None
    key_sha256: str | None = None
    models: list[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    max_wait: float = 0.0
    budget_usd: float | None = None
    budget_tokens: int | None = None
    budget_period: float | None = None


class GatewayConfig(_Config):
    """The whole configuration file."""

    models: dict[str, ModelConfig]
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    keys: dict[str, KeyConfig] = msgspec.field(default_factory=dict)


def load_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """Read and check the configuration file at ``path``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise GatewayConfigError(f"{file}: cannot read it: {exc.strerror or exc}") from None
    return parse_config(text, source=str(file))


def parse_config(text: str, *, source: str = "<config>") -> GatewayConfig:
    """Check configuration ``text``; errors name ``source`` and the offending line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GatewayConfigError(f"{source}: {exc}") from None
    # Table by table: msgspec's error paths elide dict keys, and the line needs them.
    top = _convert(text, source, data, _Top, [])
    models = {
        alias: _convert(text, source, table, ModelConfig, ["models", alias])
        for alias, table in top.models.items()
    }
    keys = {
        name: _convert(text, source, table, KeyConfig, ["keys", name])
        for name, table in top.keys.items()
    }
    config = GatewayConfig(models=models, server=top.server, keys=keys)
    for problem, where in _problems(config):
        raise _error(text, source, where, problem)
    return config


class _Top(_Config):
    models: dict[str, Any]
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    keys: dict[str, Any] = msgspec.field(default_factory=dict)


def _convert(text: str, source: str, data: Any, kind: type[_T], at: list[str]) -> _T:
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        reason, _, path = str(exc).partition(" - at `")
        where = [*at, *_segments(path.rstrip("`"))]
        unknown = re.search(r"unknown field `([^`]+)`", reason)
        if unknown:
            where.append(unknown.group(1))
        raise _error(text, source, where, reason) from None


def _problems(config: GatewayConfig) -> list[tuple[str, list[str]]]:
    """The rules msgspec's types cannot say, as ``(reason, path)``."""
    found: list[tuple[str, list[str]]] = []
    if parse_listen(config.server.listen) is None:
        found.append(("listen must be HOST:PORT", ["server", "listen"]))
    if config.server.max_body_bytes < 1 or config.server.grace < 0:
        found.append(("max_body_bytes must be >= 1 and grace >= 0", ["server"]))
    if config.server.access_log == "":
        found.append(("access_log must be true, false or a file path", ["server", "access_log"]))
    redis_env = config.server.redis_url_env
    if redis_env is not None and not os.environ.get(redis_env):
        found.append(
            (f"the environment variable {redis_env} is not set", ["server", "redis_url_env"])
        )
    if not config.models:
        found.append(("at least one model is needed", ["models"]))
    for alias, model in config.models.items():
        where = ["models", alias]
        if not model.deployments:
            found.append(("a model needs at least one deployment", where))
        for index, deployment in enumerate(model.deployments):
            at = [*where, "deployments", str(index)]
            if deployment.provider not in PROVIDERS:
                found.append(
                    (
                        f"unknown provider {deployment.provider!r}: expected one of "
                        + ", ".join(PROVIDERS),
                        [*at, "provider"],
                    )
                )
            env = deployment.api_key_env
            if env is not None and not os.environ.get(env):
                found.append((f"the environment variable {env} is not set", [*at, "api_key_env"]))
            if deployment.weight <= 0:
                found.append(("weight must be > 0", [*at, "weight"]))
        for name in ("rpm", "tpm", "concurrency"):
            value = getattr(model, name)
            if value is not None and value < 1:
                found.append((f"{name} must be >= 1", [*where, name]))
        for name in ("timeout", "idle_timeout", "first_chunk_timeout"):
            value = getattr(model, name)
            if value is not None and value <= 0:
                found.append((f"{name} must be > 0", [*where, name]))
        retry = model.retry
        attempts = retry if isinstance(retry, int) else retry.max_attempts
        if attempts < 1:
            found.append(("retry must allow at least 1 attempt", [*where, "retry"]))
    for name, key in config.keys.items():
        where = ["keys", name]
        if (key.key_env is None) == (key.key_sha256 is None):
            found.append(("give exactly one of key_env and key_sha256", where))
        elif key.key_env is not None and not os.environ.get(key.key_env):
            found.append(
                (f"the environment variable {key.key_env} is not set", [*where, "key_env"])
            )
        elif key.key_sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", key.key_sha256):
            found.append(("key_sha256 must be 64 hex digits", [*where, "key_sha256"]))
        found.extend(
            (f"unknown model {name!r}", [*where, "models"])
            for name in key.models or ()
            if name not in config.models
        )
        for limit in ("rpm", "tpm", "concurrency"):
            value = getattr(key, limit)
            if value is not None and value < 1:
                found.append((f"{limit} must be >= 1", [*where, limit]))
        if key.budget_usd is not None and key.budget_tokens is not None:
            found.append(("give one of budget_usd and budget_tokens", [*where, "budget_tokens"]))
        for limit in ("budget_usd", "budget_tokens", "budget_period"):
            value = getattr(key, limit)
            if value is not None and value <= 0:
                found.append((f"{limit} must be > 0", [*where, limit]))
    return found


def parse_listen(listen: str) -> tuple[str, int] | None:
    """``"HOST:PORT"`` as ``(host, port)``, or ``None`` when it is not one."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        return None
    return host.strip("[]"), int(port)


def listen_address(config: GatewayConfig) -> tuple[str, int]:
    """``server.listen`` as ``(host, port)``."""
    parts = parse_listen(config.server.listen)
    assert parts is not None  # checked by parse_config
    return parts


def _segments(path: str) -> list[str]:
    """``$.models.a.deployments[0].model`` → ``["models", "a", "deployments", "0", "model"]``."""
    return [s for s in re.split(r"[.\[\]]", path.removeprefix("$")) if s]


def _error(text: str, source: str, path: list[str], reason: str) -> GatewayConfigError:
    line = _line_of(text, path)
    where = f"{source}:{line}" if line else source
    dotted = ".".join(path)
    return GatewayConfigError(f"{where}: {dotted}: {reason}" if dotted else f"{where}: {reason}")


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"']+)\s*=")


def _line_of(text: str, path: list[str]) -> int | None:
    """The line that best matches ``path``: the key's own line, else its table's header."""
    best: tuple[int, int] | None = None  # (matched segments, line)
    table: list[str] = []
    counts: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            names = [part.strip().strip("\"'") for part in header.group(2).split(".")]
            if header.group(1) == "[[":
                joined = ".".join(names)
                counts[joined] = counts.get(joined, -1) + 1
                names = [*names, str(counts[joined])]
            table = names
            best = _better(best, _matched(table, path), number)
            continue
        key = _KEY.match(line)
        if key:
            best = _better(best, _matched([*table, key.group(1).strip("\"'")], path), number)
    return best[1] if best else None


def _matched(candidate: list[str], path: list[str]) -> int:
    if len(candidate) > len(path) or candidate != path[: len(candidate)]:
        return 0
    return len(candidate)


def _better(best: tuple[int, int] | None, matched: int, line: int) -> tuple[int, int] | None:
    if matched and (best is None or matched > best[0]):
        return matched, line
    return best


def env_secret(name: str | None) -> str | None:
    """The value of environment variable ``name`` (``None`` for no variable)."""
    return None if name is None else os.environ.get(name)


def as_data(config: GatewayConfig) -> dict[str, Any]:
    """The configuration as plain data (it holds no secrets: only variable names)."""
    data: dict[str, Any] = msgspec.to_builtins(config)
    return data
