"""Canned provider responses and the in-process transports that serve them.

Everything here is built once per process so that serving a response costs
the same (a dict lookup and a bytes copy) in every benchmark mode. The shapes
follow the public API references of each provider; the numbers are arbitrary
but fixed, and every response carries usage with cache and reasoning details
so that instrumentations have the full set of fields to read.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2

OPENAI_MODEL = "gpt-4o-mini"
OPENAI_SNAPSHOT = "gpt-4o-mini-2024-07-18"
ANTHROPIC_MODEL = "claude-sonnet-4-5"
ANTHROPIC_SNAPSHOT = "claude-sonnet-4-5-20250929"
GEMINI_MODEL = "gemini-2.5-flash"

PROMPT_TOKENS = 41
COMPLETION_TOKENS = 73
CACHED_TOKENS = 16
REASONING_TOKENS = 8

# About 75 tokens of plain text: the size of a short real answer.
_ANSWER = (
    "Spans are timed operations with attributes. An instrumentation creates them around "
    "library calls, a processor hands finished spans to an exporter, and the exporter "
    "ships them to a backend. For an LLM call the useful attributes are the model, the "
    "token counts and the finish reason, which together let you attribute cost per request."
)

_JSON = {"content-type": "application/json"}
_SSE = {"content-type": "text/event-stream; charset=utf-8"}


def _openai_usage() -> dict[str, Any]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": REASONING_TOKENS,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_chat_body() -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-bench0000000000000000000001",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": OPENAI_SNAPSHOT,
            "system_fingerprint": "fp_bench0001",
            "service_tier": "default",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": _ANSWER,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _openai_usage(),
        }
    ).encode()


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def openai_stream_bodies(chunks: int) -> tuple[bytes, bytes]:
    """(body with the usage chunk, body without it) for ``chunks`` content deltas.

    Like the API: every chunk carries ``"usage": null`` when the request asked
    for usage, and a final ``choices: []`` chunk carries the usage.
    """
    words = _ANSWER.split()
    base = {
        "id": "chatcmpl-bench0000000000000000000002",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": OPENAI_SNAPSHOT,
        "system_fingerprint": "fp_bench0001",
        "service_tier": "default",
    }

    def chunk(delta: dict[str, Any], finish: str | None, with_usage: bool) -> dict[str, Any]:
        out = {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if with_usage:
            out["usage"] = None
        return out

    bodies = []
    for with_usage in (True, False):
        parts = []
        for i in range(chunks):
            delta: dict[str, Any] = {"content": words[i % len(words)] + " "}
            if i == 0:
                delta = {"role": "assistant", "content": delta["content"], "refusal": None}
            parts.append(_sse(chunk(delta, None, with_usage)))
        parts.append(_sse(chunk({}, "stop", with_usage)))
        if with_usage:
            parts.append(_sse({**base, "choices": [], "usage": _openai_usage()}))
        parts.append(b"data: [DONE]\n\n")
        bodies.append(b"".join(parts))
    return bodies[0], bodies[1]


def anthropic_message_body() -> bytes:
    return json.dumps(
        {
            "id": "msg_bench00000000000000000001",
            "type": "message",
            "role": "assistant",
            "model": ANTHROPIC_SNAPSHOT,
            "content": [{"type": "text", "text": _ANSWER}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": PROMPT_TOKENS,
                "output_tokens": COMPLETION_TOKENS,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": CACHED_TOKENS,
                "service_tier": "standard",
            },
        }
    ).encode()


def gemini_generate_body() -> bytes:
    return json.dumps(
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": _ANSWER}], "role": "model"},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": PROMPT_TOKENS,
                "candidatesTokenCount": COMPLETION_TOKENS,
                "totalTokenCount": PROMPT_TOKENS + COMPLETION_TOKENS + REASONING_TOKENS,
                "cachedContentTokenCount": CACHED_TOKENS,
                "thoughtsTokenCount": REASONING_TOKENS,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": PROMPT_TOKENS}],
            },
            "modelVersion": GEMINI_MODEL,
            "responseId": "bench-gemini-response-0001",
        }
    ).encode()


def gemini_stream_body(chunks: int) -> bytes:
    """A ``streamGenerateContent?alt=sse`` body of ``chunks`` deltas.

    Like the API: every chunk carries the request's running ``usageMetadata``, the last one
    the finish reason and the final counts.
    """
    words = _ANSWER.split()
    parts = []
    for i in range(chunks):
        last = i == chunks - 1
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": words[i % len(words)] + " "}], "role": "model"},
            "index": 0,
        }
        if last:
            candidate["finishReason"] = "STOP"
        output = COMPLETION_TOKENS if last else 1 + i * COMPLETION_TOKENS // chunks
        parts.append(
            _sse(
                {
                    "candidates": [candidate],
                    "usageMetadata": {
                        "promptTokenCount": PROMPT_TOKENS,
                        "candidatesTokenCount": output,
                        "totalTokenCount": PROMPT_TOKENS + output + REASONING_TOKENS,
                        "cachedContentTokenCount": CACHED_TOKENS,
                        "thoughtsTokenCount": REASONING_TOKENS,
                    },
                    "modelVersion": GEMINI_MODEL,
                    "responseId": "bench-gemini-response-0002",
                }
            )
        )
    return b"".join(parts)


def _asks_for_usage(request: httpx2.Request) -> bool:
    body = json.loads(request.content)
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def openai_transport(stream_chunks: int = 0) -> httpx2.MockTransport:
    """Answers chat completions: JSON, or an SSE stream of ``stream_chunks`` deltas."""
    if stream_chunks:
        with_usage, without_usage = openai_stream_bodies(stream_chunks)

        def handler(request: httpx2.Request) -> httpx2.Response:
            body = with_usage if _asks_for_usage(request) else without_usage
            return httpx2.Response(200, headers=_SSE, content=body)

    else:
        body = openai_chat_body()

        def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(200, headers=_JSON, content=body)

    return httpx2.MockTransport(handler)


def anthropic_transport() -> httpx2.MockTransport:
    body = anthropic_message_body()

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=_JSON, content=body)

    return httpx2.MockTransport(handler)


def gemini_transport(stream_chunks: int = 0) -> httpx2.MockTransport:
    """Answers ``generateContent``, or ``streamGenerateContent`` with ``stream_chunks`` deltas."""
    if stream_chunks:
        body = gemini_stream_body(stream_chunks)
        headers = _SSE
    else:
        body = gemini_generate_body()
        headers = _JSON

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=headers, content=body)

    return httpx2.MockTransport(handler)
