"""llmfast: the fastest, most robust way to call an LLM from Python.

An async :class:`Client` sends typed requests through a stack of layers down to a
backend that speaks one provider's wire format over a pooled aiohttp session::

    import asyncio, llmfast

    async def main() -> None:
        async with llmfast.Client(model="gpt-4o-mini") as client:
            reply = await client.chat("Say hello")
            print(reply.text)

    asyncio.run(main())

aiohttp is imported on first use, so ``import llmfast`` stays fast.
"""

from llmfast.accumulate import ChatAccumulator
from llmfast.backends.base import Backend, HTTPBackend
from llmfast.backends.openai import OpenAIBackend
from llmfast.backends.sse import SSEDecoder, SSEEvent
from llmfast.client import ChatParams, Client
from llmfast.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    ConflictError,
    ConnectError,
    ConnectTimeout,
    DecodeError,
    LLMFastError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    ReadError,
    ReadTimeout,
    ServerError,
    StreamConsumedError,
    StreamError,
    StreamEventError,
    StreamInterruptedError,
    StreamTruncatedError,
    Timeout,
    TransportError,
    UnprocessableEntityError,
)
from llmfast.events import Event, EventHook, emit
from llmfast.pool import HTTPPool, PoolConfig, Timeouts
from llmfast.stream import ChatStream
from llmfast.transport import Layer, Request, Response, Transport, TransportLayer
from llmfast.types import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Choice,
    ChunkChoice,
    Delta,
    DeveloperMessage,
    Embedding,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
    FunctionCall,
    FunctionDefinition,
    ImagePart,
    ImageURL,
    Logprobs,
    MessageLike,
    ResponseMessage,
    SystemMessage,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolLike,
    ToolMessage,
    Usage,
    UserMessage,
)

__version__ = "0.1.0"

__all__ = [
    "APIStatusError",
    "AssistantMessage",
    "AuthenticationError",
    "Backend",
    "BadRequestError",
    "ChatAccumulator",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatParams",
    "ChatRequest",
    "ChatStream",
    "Choice",
    "ChunkChoice",
    "Client",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "ConnectTimeout",
    "DecodeError",
    "Delta",
    "DeveloperMessage",
    "Embedding",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EmbeddingUsage",
    "Event",
    "EventHook",
    "FunctionCall",
    "FunctionDefinition",
    "HTTPBackend",
    "HTTPPool",
    "ImagePart",
    "ImageURL",
    "LLMFastError",
    "Layer",
    "Logprobs",
    "MessageLike",
    "NotFoundError",
    "OpenAIBackend",
    "OverloadedError",
    "PermissionDeniedError",
    "PoolConfig",
    "RateLimitError",
    "ReadError",
    "ReadTimeout",
    "Request",
    "Response",
    "ResponseMessage",
    "SSEDecoder",
    "SSEEvent",
    "ServerError",
    "StreamConsumedError",
    "StreamError",
    "StreamEventError",
    "StreamInterruptedError",
    "StreamTruncatedError",
    "SystemMessage",
    "TextPart",
    "Timeout",
    "Timeouts",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolLike",
    "ToolMessage",
    "Transport",
    "TransportError",
    "TransportLayer",
    "UnprocessableEntityError",
    "Usage",
    "UserMessage",
    "__version__",
    "emit",
]
