"""LangChain on llmfast: a chat model and embeddings (``pip install 'llmfast[langchain]'``).

```python
from llmfast.integrations.langchain import ChatLLMFast, LLMFastEmbeddings

llm = ChatLLMFast(model="gpt-4o-mini")            # instead of ChatOpenAI(model=...)
print(llm.invoke("Say hello").content)
```

See ``docs/integrations/langchain.md`` for what maps to what.
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "llmfast.integrations.langchain needs langchain-core: pip install 'llmfast[langchain]'"
    ) from exc

from .chat import ChatLLMFast
from .embeddings import LLMFastEmbeddings

__all__ = ["ChatLLMFast", "LLMFastEmbeddings"]
