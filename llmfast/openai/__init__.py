"""An ``openai``-SDK-shaped facade over llmfast: change one import, keep your code.

    from llmfast.openai import AsyncOpenAI        # was: from openai import AsyncOpenAI

    client = AsyncOpenAI()                         # $OPENAI_API_KEY, $OPENAI_BASE_URL
    completion = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}]
    )
    print(completion.choices[0].message.content)

``import llmfast.openai as openai`` gives SDK code its error names too
(``openai.RateLimitError``, ``openai.APIConnectionError``...), which are also
[llmfast.errors][] classes. Calls run through llmfast's [`Client`][llmfast.Client]
(``layers=`` adds caching, rate limits...); ``OpenAI`` runs on
[`SyncClient`][llmfast.SyncClient]. The ``openai`` package is not needed. See
``docs/openai-facade.md`` for what maps to what and what is not supported.
"""

from llmfast.openai import types
from llmfast.openai._client import (
    AsyncChat,
    AsyncCompletions,
    AsyncEmbeddings,
    AsyncModels,
    AsyncOpenAI,
    ModelsPager,
)
from llmfast.openai._config import NOT_GIVEN, NotGiven
from llmfast.openai._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContentFilterFinishReasonError,
    InternalServerError,
    LengthFinishReasonError,
    NotFoundError,
    OpenAIError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from llmfast.openai._parse import ChatCompletionStream, ChatCompletionStreamManager
from llmfast.openai._retries import Retries
from llmfast.openai._stream import AsyncStream, Stream
from llmfast.openai._sync import OpenAI

omit = NOT_GIVEN
"""The SDK's newer name for ``NOT_GIVEN``."""
Omit = NotGiven

DEFAULT_MAX_RETRIES = 2
"""The SDK's default: two retries, three attempts in all."""

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncChat",
    "AsyncCompletions",
    "AsyncEmbeddings",
    "AsyncModels",
    "AsyncOpenAI",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "ChatCompletionStream",
    "ChatCompletionStreamManager",
    "ConflictError",
    "ContentFilterFinishReasonError",
    "InternalServerError",
    "LengthFinishReasonError",
    "ModelsPager",
    "NotFoundError",
    "NotGiven",
    "Omit",
    "OpenAI",
    "OpenAIError",
    "PermissionDeniedError",
    "RateLimitError",
    "Retries",
    "Stream",
    "UnprocessableEntityError",
    "omit",
    "types",
]
