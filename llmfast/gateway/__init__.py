"""`llmfast serve`: an OpenAI-compatible HTTP gateway that shares one onion — cache,
coalescing, limits, retries, failover — among every app and language that calls it.

```python
from llmfast.gateway import Gateway, load_config

async with Gateway(load_config("gateway.toml")) as gateway:
    ...  # any OpenAI client: base_url=gateway.url + "/v1", api_key=<a virtual key>
```

See ``docs/gateway.md``. Built on [`Client`][llmfast.Client]; the core never imports it.
"""

from llmfast.gateway.app import Gateway
from llmfast.gateway.config import (
    GatewayConfig,
    GatewayConfigError,
    load_config,
    parse_config,
)
from llmfast.gateway.tenants import key_digest

__all__ = [
    "Gateway",
    "GatewayConfig",
    "GatewayConfigError",
    "key_digest",
    "load_config",
    "parse_config",
]
