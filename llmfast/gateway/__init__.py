"""`llmfast serve`: an OpenAI- and Anthropic-compatible HTTP gateway that shares one
onion — cache, coalescing, limits, retries, failover — among every app and language
that calls it.

```python
from llmfast.gateway import Gateway, load_config

async with Gateway(load_config("gateway.toml")) as gateway:
    ...  # any OpenAI client: base_url=gateway.url + "/v1", api_key=<a virtual key>
```

See ``docs/gateway.md``. Built on [`Client`][llmfast.Client]; the core never imports
it. Needs the ``gateway`` extra (``pip install 'llmfast[gateway]'``) for its metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmfast._lazy import lazy_getattr

_LAZY = {
    "Gateway": "llmfast.gateway.app",
    "GatewayConfig": "llmfast.gateway.config",
    "GatewayConfigError": "llmfast.gateway.config",
    "key_digest": "llmfast.gateway.tenants",
    "load_config": "llmfast.gateway.config",
    "parse_config": "llmfast.gateway.config",
}

if TYPE_CHECKING:
    from llmfast.gateway.app import Gateway
    from llmfast.gateway.config import GatewayConfig, GatewayConfigError, load_config, parse_config
    from llmfast.gateway.tenants import key_digest

__all__ = [
    "Gateway",
    "GatewayConfig",
    "GatewayConfigError",
    "key_digest",
    "load_config",
    "parse_config",
]

__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
