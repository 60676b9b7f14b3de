"""What a call costs: prices per model, yours or the built-in table, applied to ``Usage``.

::

    prices = Prices({"my-finetune": Price(input=0.30, output=1.20)})
    prices.cost(completion.total_usage, "claude-sonnet-4-5")  # dollars, or None

The built-in table is the [genai-prices](https://pypi.org/project/genai-prices/)
package's data (``pip install llmfast[prices]``): versioned, with cached-input, cache
write, audio, long-context and batch prices for the major providers. It is loaded once,
when the first ``Prices`` (or ``Stats``) is made, never at ``import llmfast`` or during a
call, and each model's price is turned into a [`Price`][llmfast.prices.Price] once, so
pricing a call is a few multiplications. Your prices win over the table; a model in
neither costs ``None``, never a silent 0. ``Prices.version`` names the data used.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

from llmfast.errors import ConfigurationError
from llmfast.types import Usage

__all__ = ["Price", "Prices", "builtin_loaded", "builtin_prices_version"]


class Price(NamedTuple):
    """What a model costs, in dollars per million tokens.

    Only ``input`` and ``output`` are required; a price left ``None`` falls back as
    noted. ``tiers`` are long-context prices: ``(above, price)`` pairs, where a request
    with more than ``above`` input tokens pays ``price`` for all its tokens (how
    Anthropic and Gemini bill past 200k). ``batch`` is the price of provider-batch
    usage (``Usage.batch``); ``None`` means unknown, so batch usage costs ``None``
    (``price.discounted(0.5)`` gives the usual half price).
    """

    input: float
    output: float
    cache_read: float | None = None
    """Cached input read (``None``: the input price)."""
    cache_write: float | None = None
    """Input written to the prompt cache, 5-minute TTL (``None``: the input price)."""
    cache_write_1h: float | None = None
    """Input written to the cache with Anthropic's 1-hour TTL (``None``: cache_write)."""
    input_audio: float | None = None
    """Audio input (``None``: the input price)."""
    output_audio: float | None = None
    """Audio output (``None``: the output price)."""
    tiers: tuple[tuple[int, Price], ...] = ()
    batch: Price | None = None

    def discounted(self, factor: float) -> Price:
        """Every price (tiers too) times ``factor``, e.g. ``0.5`` for a batch rate."""

        def scale(p: float | None) -> float | None:
            return None if p is None else p * factor

        return self._replace(
            input=self.input * factor,
            output=self.output * factor,
            cache_read=scale(self.cache_read),
            cache_write=scale(self.cache_write),
            cache_write_1h=scale(self.cache_write_1h),
            input_audio=scale(self.input_audio),
            output_audio=scale(self.output_audio),
            tiers=tuple((above, tier.discounted(factor)) for above, tier in self.tiers),
            batch=None,
        )

    def cost(self, usage: Usage, *, batch: bool | None = None) -> float | None:
        """The dollars ``usage`` costs at this price (``None``: a batch without a batch
        price). ``batch`` overrides ``usage.batch``."""
        price = self
        if usage.batch if batch is None else batch:
            if self.batch is None:
                return None
            price = self.batch
        prompt = usage.prompt_tokens
        for above, tier in reversed(price.tiers):
            if prompt > above:
                price = tier
                break
        details, done = usage.prompt_tokens_details, usage.completion_tokens_details
        read = write = write_1h = audio_in = audio_out = 0
        if details:
            read = _count(details, "cached_tokens")
            write = _count(details, "cache_creation_tokens")
            audio_in = _count(details, "audio_tokens")
            if write:
                write_1h = _write_1h(details, write)
        if done:
            audio_out = _count(done, "audio_tokens")
        input_price, output_price, read_price, write_price, write_1h_price, ain, aout = price[:7]
        if write_price is None:
            write_price = input_price
        dollars = (
            max(prompt - read - write - audio_in, 0) * input_price
            + max(usage.completion_tokens - audio_out, 0) * output_price
        )
        if read:
            dollars += read * (input_price if read_price is None else read_price)
        if write:
            dollars += (write - write_1h) * write_price
            dollars += write_1h * (write_price if write_1h_price is None else write_1h_price)
        if audio_in:
            dollars += audio_in * (input_price if ain is None else ain)
        if audio_out:
            dollars += audio_out * (output_price if aout is None else aout)
        return dollars / 1e6


def _count(details: dict[str, Any], key: str) -> int:
    value = details.get(key)
    return value if type(value) is int else 0


def _write_1h(details: dict[str, Any], write: int) -> int:
    breakdown = details.get("cache_creation")
    if isinstance(breakdown, dict):
        tokens = breakdown.get("ephemeral_1h_input_tokens")
        if type(tokens) is int:
            return min(tokens, write)
    return 0


def check_price(model: str, price: Any) -> Price:
    """``price`` (a ``Price`` or an ``(input, output)`` pair) checked: finite, >= 0."""
    if not isinstance(price, Price):
        try:
            input_price, output_price = price
            price = Price(float(input_price), float(output_price))
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"the price of {model!r} must be Price(input=..., output=...)"
            ) from None
    numbers = [p for p in price[:7] if p is not None]
    if not all(isinstance(p, int | float) and math.isfinite(p) and p >= 0 for p in numbers):
        raise ConfigurationError(f"the price of {model!r} must be finite and >= 0")
    for _, tier in price.tiers:
        check_price(model, tier)
    if price.batch is not None:
        check_price(model, price.batch)
    checked: Price = price._replace(input=float(price.input), output=float(price.output))
    return checked


class Prices:
    """Prices per model: ``overrides`` first, then the built-in table.

    Args:
        overrides: per model name, a [`Price`][llmfast.prices.Price] or an
            ``(input, output)`` pair (dollars per million tokens).
        builtin: also look models up in genai-prices' data when it is installed
            (``llmfast[prices]``); loaded here, once per process.
        provider: the genai-prices provider id to look models up under (``"openai"``,
            ``"anthropic"``, ``"google"``...); ``None`` lets the model name decide.
    """

    def __init__(
        self,
        overrides: Mapping[str, Price | tuple[float, float]] | None = None,
        *,
        builtin: bool = True,
        provider: str | None = None,
    ) -> None:
        self.overrides: dict[str, Price] = {
            str(model): check_price(str(model), price) for model, price in (overrides or {}).items()
        }
        self.provider = provider
        self._table = _builtin() if builtin else None
        self._found: dict[str, Price | None] = {}

    def use_builtin(self) -> None:
        """Load the built-in table now (if not yet; imports genai-prices) and use it."""
        self._table = _builtin()
        self._found.clear()

    @property
    def version(self) -> str | None:
        """The built-in data used (``"genai-prices 0.2.3"``); ``None`` without it."""
        return None if self._table is None else self._table.version

    def price(self, model: str) -> Price | None:
        """``model``'s price: yours, else the table's (looked up once); ``None`` if unknown."""
        price = self.overrides.get(model)
        if price is not None:
            return price
        found = self._found
        if model in found:
            return found[model]
        price = None if self._table is None else self._table.lookup(model, self.provider)
        found[model] = price
        return price

    def cost(self, usage: Usage | None, model: str, *, batch: bool | None = None) -> float | None:
        """Dollars ``usage`` cost on ``model``; ``None`` when its price is unknown (no
        usage costs 0.0). ``batch=True`` prices it at the batch rate (default:
        ``usage.batch``, which provider-batch results carry)."""
        if usage is None:
            return 0.0
        price = self.price(model)
        return None if price is None else price.cost(usage, batch=batch)

    def __repr__(self) -> str:
        return f"<Prices {len(self.overrides)} overrides, table={self.version}>"


# --- the built-in table (genai-prices) --------------------------------------------------

_FIELDS = (
    ("input", "input_mtok"),
    ("output", "output_mtok"),
    ("cache_read", "cache_read_mtok"),
    ("cache_write", "cache_write_mtok"),
    ("cache_write_1h", "cache_write_1h_mtok"),
    ("input_audio", "input_audio_mtok"),
    ("output_audio", "output_audio_mtok"),
)


class _Table:
    """genai-prices' snapshot, and its model prices turned into ``Price``."""

    def __init__(self, snapshot: Any, version: str) -> None:
        self.snapshot = snapshot
        self.version = version

    def lookup(self, model: str, provider: str | None) -> Price | None:
        try:
            _, info = self.snapshot.find_provider_model(model, None, provider, None)
        except LookupError:
            return None
        now = datetime.now(tz=timezone.utc)
        standard = _convert(info.get_prices(now))
        if standard is None:
            return None
        batch = None
        variants = info.price_variants or ()
        if any(v.when.get("processing") == "batch" for v in variants):
            batch = _convert(info.get_prices(now, {"processing": "batch"}))
        return standard._replace(batch=batch)


def _convert(model_price: Any) -> Price | None:
    """A genai-prices ``ModelPrice`` as a ``Price`` (``None`` without token prices)."""
    values: dict[str, Any] = {name: getattr(model_price, key, None) for name, key in _FIELDS}
    if values["input"] is None or values["output"] is None:
        return None
    starts = sorted(
        {tier.start for v in values.values() if hasattr(v, "tiers") for tier in v.tiers}
    )

    def at(start: int | None) -> Price:
        out: dict[str, float | None] = {}
        for name, value in values.items():
            if value is None:
                out[name] = None
            elif hasattr(value, "tiers"):
                chosen = value.base
                for tier in value.tiers:
                    if start is not None and start >= tier.start:
                        chosen = tier.price
                out[name] = float(chosen)
            else:
                out[name] = float(value)
        return Price(**out)  # type: ignore[arg-type]

    return at(None)._replace(tiers=tuple((start, at(start)) for start in starts))


_lock = threading.Lock()
_loaded: list[_Table | None] = []


def _builtin() -> _Table | None:
    """genai-prices' data, loaded on first use (``None`` when not installed)."""
    with _lock:
        if not _loaded:
            _loaded.append(_load())
        return _loaded[0]


def _load() -> _Table | None:
    try:
        import genai_prices
        from genai_prices import data_snapshot
    except ImportError:
        return None
    snapshot = data_snapshot.get_snapshot()
    with contextlib.suppress(LookupError):  # warm the lookups here, not during a call
        snapshot.find_provider_model("gpt-4o", None, None, None)
    return _Table(snapshot, f"genai-prices {genai_prices.__version__}")


def builtin_loaded() -> bool:
    """True once the built-in table was loaded (or found missing) in this process."""
    return bool(_loaded)


def builtin_prices_version() -> str | None:
    """The version of the built-in price data (``None`` when genai-prices is absent);
    loads it if it was not yet."""
    table = _builtin()
    return None if table is None else table.version
