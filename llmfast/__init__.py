"""llmfast: the fastest, most robust way to call an LLM from Python.

An async [`Client`][llmfast.Client] sends typed requests through a stack of layers down to a
backend that speaks one provider's wire format over a pooled aiohttp session::

    import asyncio, llmfast

    async def main() -> None:
        async with llmfast.Client(model="gpt-4o-mini") as client:
            reply = await client.chat("Say hello")
            print(reply.text)

    asyncio.run(main())

``import llmfast`` imports everything a ``Client`` and its calls need (aiohttp and
every backend included), so that no call stalls the event loop importing a module;
optional extras (Redis, OpenTelemetry, tiktoken, tqdm) and what is built on the
client (``Batch``, ``SyncClient``, ``Router``...) are imported on first use.
"""

from typing import TYPE_CHECKING

from llmfast._lazy import lazy_getattr
from llmfast.accumulate import ChatAccumulator
from llmfast.backends.anthropic import AnthropicBackend
from llmfast.backends.base import Backend, HTTPBackend
from llmfast.backends.gemini import GeminiBackend
from llmfast.backends.ndjson import NDJSONDecoder
from llmfast.backends.ollama import OllamaBackend
from llmfast.backends.openai import OpenAIBackend
from llmfast.backends.sse import SSEDecoder, SSEEvent
from llmfast.client import ChatParams, Client
from llmfast.commit import commit_first_chunk
from llmfast.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    BatchAbortedError,
    BudgetExceededError,
    CircuitOpenError,
    ClientClosedError,
    CoalesceUnavailableError,
    ConfigurationError,
    ConflictError,
    ConnectError,
    ConnectTimeout,
    ContextLengthError,
    DeadlineExceeded,
    DecodeError,
    FirstChunkTimeout,
    IdleTimeout,
    LimiterUnavailableError,
    LLMFastError,
    MissingCredentialsError,
    NotFoundError,
    OutputError,
    OutputRefusedError,
    OutputTruncatedError,
    OutputValidationError,
    OverloadedError,
    PermissionDeniedError,
    QueueFullError,
    QueueTimeout,
    QuotaExceededError,
    RateLimitError,
    ReadError,
    ReadTimeout,
    RequestTooLargeError,
    ResponseTooLargeError,
    ServerError,
    StreamConsumedError,
    StreamError,
    StreamEventError,
    StreamInterruptedError,
    StreamTruncatedError,
    Timeout,
    TransportError,
    UnprocessableEntityError,
    UnsupportedParameterError,
)
from llmfast.events import Event, EventHook, emit, only_events
from llmfast.hooks import fan_out
from llmfast.log import LoggingHook
from llmfast.pool import HTTPPool, PoolConfig, Timeouts
from llmfast.prices import Prices
from llmfast.providers import backend_for
from llmfast.raw_events import RawEvents
from llmfast.stats import Price, Stats, StatsSnapshot
from llmfast.stream import ChatStream
from llmfast.structured.call import Output, StructuredCompletion
from llmfast.structured.loop import ToolLoopLimitError, ToolRun
from llmfast.structured.output import OutputSpec, output_spec
from llmfast.structured.stream import StructuredStream
from llmfast.structured.tools import FunctionTool, ToolArgumentsError, tool
from llmfast.tokens import CountMethod, TokenCount
from llmfast.transport import (
    Layer,
    Request,
    Response,
    Transport,
    TransportLayer,
)
from llmfast.types import (
    AssistantMessage,
    BaseMessage,
    CacheMark,
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
    OutputAttempt,
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

# A library never configures logging: llmfast.log gives the "llmfast" logger a
# NullHandler, so it is silent unless the application sets up handlers.

# Imported on first use: built on the client, or needing an optional extra.
_LAZY = {
    "Route": "llmfast.router",
    "Router": "llmfast.router",
    "SyncClient": "llmfast.sync",
    "Batch": "llmfast.batch",
    "BatchResult": "llmfast.batch",
    "BatchLimits": "llmfast.batch.provider",
    "ProviderBatch": "llmfast.batch.provider",
    "ProviderBatchOptions": "llmfast.batch.provider",
    "OpenTelemetry": "llmfast.otel",
    "OpenAIResponsesBackend": "llmfast.backends.openai_responses",
    "Budget": "llmfast.layers.budget",
}

if TYPE_CHECKING:
    from llmfast.backends.openai_responses import OpenAIResponsesBackend
    from llmfast.batch import Batch, BatchResult
    from llmfast.batch.provider import BatchLimits, ProviderBatch, ProviderBatchOptions
    from llmfast.layers.budget import Budget
    from llmfast.otel import OpenTelemetry
    from llmfast.router import Route, Router
    from llmfast.sync import SyncClient


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return list(__all__)


__all__ = [
    "APIStatusError",
    "AnthropicBackend",
    "AssistantMessage",
    "AuthenticationError",
    "Backend",
    "BadRequestError",
    "BaseMessage",
    "Batch",
    "BatchAbortedError",
    "BatchLimits",
    "BatchResult",
    "Budget",
    "BudgetExceededError",
    "CacheMark",
    "ChatAccumulator",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatParams",
    "ChatRequest",
    "ChatStream",
    "Choice",
    "ChunkChoice",
    "CircuitOpenError",
    "Client",
    "ClientClosedError",
    "CoalesceUnavailableError",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "ConnectTimeout",
    "ContextLengthError",
    "CountMethod",
    "DeadlineExceeded",
    "DecodeError",
    "Delta",
    "DeveloperMessage",
    "Embedding",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EmbeddingUsage",
    "Event",
    "EventHook",
    "FirstChunkTimeout",
    "FunctionCall",
    "FunctionDefinition",
    "FunctionTool",
    "GeminiBackend",
    "HTTPBackend",
    "HTTPPool",
    "IdleTimeout",
    "ImagePart",
    "ImageURL",
    "LLMFastError",
    "Layer",
    "LimiterUnavailableError",
    "LoggingHook",
    "Logprobs",
    "MessageLike",
    "MissingCredentialsError",
    "NDJSONDecoder",
    "NotFoundError",
    "OllamaBackend",
    "OpenAIBackend",
    "OpenAIResponsesBackend",
    "OpenTelemetry",
    "Output",
    "OutputAttempt",
    "OutputError",
    "OutputRefusedError",
    "OutputSpec",
    "OutputTruncatedError",
    "OutputValidationError",
    "OverloadedError",
    "PermissionDeniedError",
    "PoolConfig",
    "Price",
    "Prices",
    "ProviderBatch",
    "ProviderBatchOptions",
    "QueueFullError",
    "QueueTimeout",
    "QuotaExceededError",
    "RateLimitError",
    "RawEvents",
    "ReadError",
    "ReadTimeout",
    "Request",
    "RequestTooLargeError",
    "Response",
    "ResponseMessage",
    "ResponseTooLargeError",
    "Route",
    "Router",
    "SSEDecoder",
    "SSEEvent",
    "ServerError",
    "Stats",
    "StatsSnapshot",
    "StreamConsumedError",
    "StreamError",
    "StreamEventError",
    "StreamInterruptedError",
    "StreamTruncatedError",
    "StructuredCompletion",
    "StructuredStream",
    "SyncClient",
    "SystemMessage",
    "TextPart",
    "Timeout",
    "Timeouts",
    "TokenCount",
    "Tool",
    "ToolArgumentsError",
    "ToolCall",
    "ToolCallDelta",
    "ToolLike",
    "ToolLoopLimitError",
    "ToolMessage",
    "ToolRun",
    "Transport",
    "TransportError",
    "TransportLayer",
    "UnprocessableEntityError",
    "UnsupportedParameterError",
    "Usage",
    "UserMessage",
    "__version__",
    "backend_for",
    "commit_first_chunk",
    "emit",
    "fan_out",
    "only_events",
    "output_spec",
    "tool",
]
