"""Payloads of the providers' batch APIs as their published references show them,
for tests/test_provider_batch_shapes.py (kept as the references print them)."""

from __future__ import annotations

from typing import Any

# https://platform.openai.com/docs/api-reference/batch/object
OPENAI_BATCH: dict[str, Any] = {
    "id": "batch_abc123",
    "object": "batch",
    "endpoint": "/v1/completions",
    "errors": None,
    "input_file_id": "file-abc123",
    "completion_window": "24h",
    "status": "completed",
    "output_file_id": "file-cvaTdG",
    "error_file_id": "file-HOWS94",
    "created_at": 1711471533,
    "in_progress_at": 1711471538,
    "expires_at": 1711557933,
    "finalizing_at": 1711493133,
    "completed_at": 1711493163,
    "failed_at": None,
    "expired_at": None,
    "cancelling_at": None,
    "cancelled_at": None,
    "request_counts": {"total": 100, "completed": 95, "failed": 5},
    "metadata": {"customer_id": "user_123456789", "batch_description": "Nightly eval job"},
}

# https://platform.openai.com/docs/api-reference/files/object
OPENAI_FILE: dict[str, Any] = {
    "id": "file-abc123",
    "object": "file",
    "bytes": 120000,
    "created_at": 1677610602,
    "expires_at": 1680202602,
    "filename": "salesOverview.pdf",
    "purpose": "assistants",
}

# https://platform.openai.com/docs/guides/batch (the input file, one request a line)
OPENAI_INPUT_LINE = (
    b'{"custom_id": "request-1", "method": "POST", "url": "/v1/chat/completions", "body": '
    b'{"model": "gpt-3.5-turbo-0125", "messages": [{"role": "system", "content": "You are a '
    b'helpful assistant."},{"role": "user", "content": "Hello world!"}],"max_tokens": 1000}}'
)

# https://platform.openai.com/docs/guides/batch (the output file)
OPENAI_OUTPUT_LINE = (
    b'{"id": "batch_req_123", "custom_id": "request-2", "response": {"status_code": 200, '
    b'"request_id": "req_123", "body": {"id": "chatcmpl-123", "object": "chat.completion", '
    b'"created": 1711652795, "model": "gpt-3.5-turbo-0125", "choices": [{"index": 0, '
    b'"message": {"role": "assistant", "content": "Hello."}, "logprobs": null, '
    b'"finish_reason": "stop"}], "usage": {"prompt_tokens": 22, "completion_tokens": 2, '
    b'"total_tokens": 24}, "system_fingerprint": "fp_123"}}, "error": null}'
)

# https://platform.openai.com/docs/guides/batch ("batch_expired" in the error file)
OPENAI_EXPIRED_LINE = (
    b'{"id": "batch_req_123", "custom_id": "request-3", "response": null, "error": '
    b'{"code": "batch_expired", "message": "This request could not be executed before the '
    b'completion window expired."}}'
)

# https://docs.anthropic.com/en/api/creating-message-batches (the response)
ANTHROPIC_BATCH: dict[str, Any] = {
    "archived_at": "2024-08-20T18:37:24.100435Z",
    "cancel_initiated_at": "2024-08-20T18:37:24.100435Z",
    "created_at": "2024-08-20T18:37:24.100435Z",
    "ended_at": "2024-08-20T18:37:24.100435Z",
    "expires_at": "2024-08-20T18:37:24.100435Z",
    "id": "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF",
    "processing_status": "in_progress",
    "request_counts": {
        "canceled": 10,
        "errored": 30,
        "expired": 10,
        "processing": 100,
        "succeeded": 50,
    },
    "results_url": "https://api.anthropic.com/v1/messages/batches/msgbatch_013Zva2CMHLNnXjNJJKqJ2EF/results",
    "type": "message_batch",
}

# https://docs.anthropic.com/en/docs/build-with-claude/batch-processing (results .jsonl)
ANTHROPIC_SUCCEEDED_LINE = (
    b'{"custom_id":"my-second-request","result":{"type":"succeeded","message":{"id":'
    b'"msg_014VwiXbi91y3JMjcpyGBHX5","type":"message","role":"assistant","model":'
    b'"claude-3-5-sonnet-20240620","content":[{"type":"text","text":"Hello again! It\'s nice '
    b"to see you. How can I assist you today? Is there anything specific you'd like to chat "
    b'about or any questions you have?"}],"stop_reason":"end_turn","stop_sequence":null,'
    b'"usage":{"input_tokens":11,"output_tokens":36}}}}'
)
# same page: the result types "errored" (an error object), "canceled", "expired"
ANTHROPIC_ERRORED_LINE = (
    b'{"custom_id":"my-third-request","result":{"type":"errored","error":{"type":"error",'
    b'"error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}}}'
)
ANTHROPIC_EXPIRED_LINE = b'{"custom_id":"my-fourth-request","result":{"type":"expired"}}'
ANTHROPIC_CANCELED_LINE = b'{"custom_id":"my-fifth-request","result":{"type":"canceled"}}'
