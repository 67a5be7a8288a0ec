"""Fake Amazon Bedrock Runtime server (REST-JSON, AWS event streams).

Point the real SDKs at it with::

    client = server.client()          # boto3.client("bedrock-runtime", endpoint_url=server.url,
                                      #   region_name="us-east-1", aws_access_key_id="test",
                                      #   aws_secret_access_key="test", retries: 1 attempt)
    async with server.async_client() as client:   # aiobotocore, same settings
        ...

Routes (``{modelId}`` is one percent-encoded path segment: plain ids such as
``anthropic.claude-3-5-haiku-20241022-v1:0``, inference profiles such as
``us.anthropic.claude-sonnet-4-20250514-v1:0`` and whole ARNs all arrive intact;
``server.model_id(req)`` decodes it):

* ``POST /model/{modelId}/converse``  -- JSON ``output.message``, ``stopReason``,
  ``usage`` (``inputTokens``, ``outputTokens``, ``totalTokens``, plus
  ``cacheReadInputTokens`` / ``cacheWriteInputTokens`` when not 0) and ``metrics``;
* ``POST /model/{modelId}/converse-stream`` -- ``application/vnd.amazon.eventstream``:
  ``messageStart``, ``contentBlockDelta`` x chunks, ``contentBlockStop``,
  ``messageStop``, ``metadata`` (usage + metrics);
* ``POST /model/{modelId}/invoke`` -- the model family's own body (see
  :func:`family_of`) and the ``X-Amzn-Bedrock-Input-Token-Count`` /
  ``-Output-Token-Count`` / ``-Invocation-Latency`` headers (plus
  ``-Cache-Read-Input-Token-Count`` / ``-Cache-Write-Input-Token-Count`` when not 0;
  the input count excludes them, as on AWS);
* ``POST /model/{modelId}/invoke-with-response-stream`` -- ``chunk`` events whose
  payload is ``{"bytes": base64(family JSON), "p": padding}``; the last one's JSON
  carries ``amazon-bedrock-invocationMetrics`` (``inputTokenCount``,
  ``outputTokenCount``, ``invocationLatency``, ``firstByteLatency``, and the cache
  counts when not 0).

Families (by the model id with any region prefix / ARN path removed): ``anthropic``
(Messages body with cache usage; streamed as the Messages events), ``nova``
(Converse-like body, ``usage.inputTokens``...), ``titan`` (``inputTextTokenCount``,
``results[].tokenCount``), ``titan-embed`` (``embedding``, ``inputTextTokenCount``),
``llama`` (``prompt_token_count`` / ``generation_token_count``), ``cohere``
(Command R chat body, no usage: headers only), ``cohere-embed`` and ``mistral``
(``outputs[]``, no usage).  Anything else answers like ``mistral``.

Defaults (``BedrockScenario()``): usage :class:`BedrockUsage` ``input_tokens=21``,
``output_tokens=11``, no cache tokens, ``totalTokens`` = the sum of all four;
``chunks=5`` pieces ``"t0 t1 t2 t3 t4 "``; ``stop_reason="end_turn"``; ``latency_ms=42``.

Errors answer like AWS: status, ``x-amzn-ErrorType: <Code>:http://internal.amazon.com/...``
and ``{"message": ...}``; botocore raises ``ClientError`` with that code::

    server.next_error(400)   # ValidationException (403 AccessDenied..., 404 ResourceNotFound...)
    server.next_error(429)   # ThrottlingException (500 InternalServer..., 503 Service...)
    server.next_error(400, type="ModelErrorException")   # any other code
    server.next(error_after=2)   # an exception frame (modelStreamErrorException) after 2 events
    server.next(drop_after=3) / server.next(truncate_after=3) / server.next(chunk_delay=0.05)

The event-stream encoder (:func:`encode_event`) writes the AWS binary framing itself:
prelude (total and headers length), prelude CRC32, typed headers, payload, message CRC32.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .base import ErrorStep, Exchange, FakeProviderServer, RecordedRequest, ScenarioBase

__all__ = [
    "BedrockFakeServer",
    "BedrockScenario",
    "BedrockUsage",
    "encode_event",
    "family_of",
]

EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
_REGION_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.")
# The padding field AWS adds to every event payload (hides the payload length).
_PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass
class BedrockUsage:
    """Token usage served by the fake (``total_tokens`` defaults to the sum of all four)."""

    input_tokens: int = 21
    output_tokens: int = 11
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    total_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.total_tokens is None:
            self.total_tokens = (
                self.input_tokens
                + self.output_tokens
                + self.cache_read_input_tokens
                + self.cache_write_input_tokens
            )

    def converse_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": self.total_tokens,
        }
        if self.cache_read_input_tokens:
            out["cacheReadInputTokens"] = self.cache_read_input_tokens
        if self.cache_write_input_tokens:
            out["cacheWriteInputTokens"] = self.cache_write_input_tokens
        return out

    def invocation_metrics(self, latency_ms: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "inputTokenCount": self.input_tokens,
            "outputTokenCount": self.output_tokens,
            "invocationLatency": latency_ms,
            "firstByteLatency": max(1, latency_ms // 4),
        }
        if self.cache_read_input_tokens:
            out["cacheReadInputTokenCount"] = self.cache_read_input_tokens
        if self.cache_write_input_tokens:
            out["cacheWriteInputTokenCount"] = self.cache_write_input_tokens
        return out

    def headers(self, latency_ms: int) -> dict[str, str]:
        out = {
            "X-Amzn-Bedrock-Input-Token-Count": str(self.input_tokens),
            "X-Amzn-Bedrock-Output-Token-Count": str(self.output_tokens),
            "X-Amzn-Bedrock-Invocation-Latency": str(latency_ms),
        }
        if self.cache_read_input_tokens:
            out["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(self.cache_read_input_tokens)
        if self.cache_write_input_tokens:
            out["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = str(self.cache_write_input_tokens)
        return out


@dataclass
class BedrockScenario(ScenarioBase):
    usage: BedrockUsage = field(default_factory=BedrockUsage)
    #: Converse ``stopReason`` (and the family's own stop field on InvokeModel)
    stop_reason: str = "end_turn"
    latency_ms: int = 42
    #: send an exception frame after this many stream events
    error_after: int | None = None
    error_type: str = "modelStreamErrorException"
    error_message: str = "The model stream was interrupted."
    #: ``titan-embed`` / ``cohere-embed`` vector size
    embedding_dim: int = 8


_ERROR_CODES = {
    400: ("ValidationException", "Malformed input request, please reformat your input and retry."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified ID."),
    404: ("ResourceNotFoundException", "The requested resource could not be found."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request."),
    424: ("ModelErrorException", "The model returned an error."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error."),
    503: ("ServiceUnavailableException", "Service unavailable. Try again later."),
}

# -- AWS event stream (application/vnd.amazon.eventstream) -----------------------------

_STRING, _BYTES = 7, 6


def encode_event(headers: dict[str, str | bytes], payload: bytes) -> bytes:
    """One event-stream message: prelude, prelude CRC, headers, payload, message CRC.

    String header values use type 7, bytes values type 6 (2-byte length each).
    """
    hdr = bytearray()
    for name, value in headers.items():
        key = name.encode()
        if isinstance(value, str):
            raw, kind = value.encode(), _STRING
        else:
            raw, kind = bytes(value), _BYTES
        hdr += struct.pack(">B", len(key)) + key + struct.pack(">BH", kind, len(raw)) + raw
    total = 12 + len(hdr) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hdr))
    head = prelude + struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = head + bytes(hdr) + payload
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


def _event(event_type: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps({**body, "p": _PAD[: 1 + len(event_type) % len(_PAD)]}).encode()
    return encode_event(
        {
            ":event-type": event_type,
            ":content-type": "application/json",
            ":message-type": "event",
        },
        payload,
    )


def _exception(exception_type: str, message: str) -> bytes:
    return encode_event(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps({"message": message}).encode(),
    )


def _chunk(obj: dict[str, Any]) -> bytes:
    return _event("chunk", {"bytes": base64.b64encode(json.dumps(obj).encode()).decode()})


# -- model families ---------------------------------------------------------------------


def base_model_id(model_id: str) -> str:
    """``arn:...:inference-profile/us.meta.llama3-...`` -> ``meta.llama3-...``."""
    bare = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    for prefix in _REGION_PREFIXES:
        if bare.startswith(prefix):
            return bare[len(prefix) :]
    return bare


def family_of(model_id: str) -> str:
    """The InvokeModel body family of a model id, inference profile or ARN."""
    bare = base_model_id(model_id)
    if bare.startswith("anthropic."):
        return "anthropic"
    if bare.startswith("amazon.nova"):
        return "nova"
    if bare.startswith("amazon.titan-embed"):
        return "titan-embed"
    if bare.startswith("amazon.titan"):
        return "titan"
    if bare.startswith("meta."):
        return "llama"
    if bare.startswith("cohere.embed"):
        return "cohere-embed"
    if bare.startswith("cohere."):
        return "cohere"
    return "mistral"


def _vector(index: int, dim: int) -> list[float]:
    return [((index * 7 + j) % 64) / 64 - 0.5 for j in range(dim)]


class BedrockFakeServer(FakeProviderServer[BedrockScenario]):
    Scenario = BedrockScenario

    # -- real SDK clients ------------------------------------------------------
    def client_kwargs(self, **kwargs: Any) -> dict[str, Any]:
        from botocore.config import Config

        kwargs.setdefault("endpoint_url", self.url)
        kwargs.setdefault("region_name", "us-east-1")
        kwargs.setdefault("aws_access_key_id", "test")
        kwargs.setdefault("aws_secret_access_key", "test")
        kwargs.setdefault("config", Config(retries={"total_max_attempts": 1}))
        return kwargs

    def client(self, **kwargs: Any) -> Any:
        """A real ``boto3`` ``bedrock-runtime`` client pointed here (no retries)."""
        import boto3

        return boto3.client("bedrock-runtime", **self.client_kwargs(**kwargs))

    def async_client(self, **kwargs: Any) -> Any:
        """``aiobotocore``'s ``create_client`` context manager (``async with ... as c``)."""
        from aiobotocore.session import get_session

        return get_session().create_client("bedrock-runtime", **self.client_kwargs(**kwargs))

    @staticmethod
    def model_id(req: RecordedRequest) -> str:
        """The model id of a recorded request, percent-decoded (``/model/{id}/...``)."""
        return unquote(req.path.split("/")[2])

    # -- errors ----------------------------------------------------------------
    def common_headers(self) -> dict[str, str]:
        return {"x-amzn-RequestId": self._request_uuid()}

    def _request_uuid(self) -> str:
        return "00000000-0000-4000-8000-" + self._next_id("req-")[-12:]

    def error_body(self, step: ErrorStep) -> Any:
        _, message = _ERROR_CODES.get(step.status, ("InternalServerException", "Error."))
        return {"message": step.message or message}

    def _send_error(self, ex: Exchange, step: ErrorStep) -> None:
        code, _ = _ERROR_CODES.get(
            step.status,
            ("InternalServerException" if step.status >= 500 else "ValidationException", ""),
        )
        headers = {
            "x-amzn-ErrorType": f"{step.type or code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            **step.headers,
        }
        body = step.body if step.body is not None else self.error_body(step)
        ex.send_json(step.status, body, headers)

    # -- routing ---------------------------------------------------------------
    def route(self, req: RecordedRequest) -> Any:
        parts = req.path.split("/")
        if req.method != "POST" or len(parts) != 4 or parts[1] != "model" or not parts[2]:
            return None
        return {
            "converse": self._converse,
            "converse-stream": self._converse_stream,
            "invoke": self._invoke,
            "invoke-with-response-stream": self._invoke_stream,
        }.get(parts[3])

    def _stream(
        self, ex: Exchange, sc: BedrockScenario, frames: list[bytes], **headers: str
    ) -> None:
        if sc.error_after is not None:
            frames = [*frames[: sc.error_after], _exception(sc.error_type, sc.error_message)]
        ex.start_stream(sc.status, EVENTSTREAM_CONTENT_TYPE, {**headers, **sc.headers})
        ex.stream_frames(frames, sc)

    # -- Converse --------------------------------------------------------------
    def _converse(self, req: RecordedRequest, ex: Exchange, sc: BedrockScenario) -> None:
        obj = {
            "output": {"message": {"role": "assistant", "content": [{"text": sc.text()}]}},
            "stopReason": sc.stop_reason,
            "usage": sc.usage.converse_json(),
            "metrics": {"latencyMs": sc.latency_ms},
        }
        ex.send_json(sc.status, obj, sc.headers)

    def _converse_stream(self, req: RecordedRequest, ex: Exchange, sc: BedrockScenario) -> None:
        frames = [_event("messageStart", {"role": "assistant"})]
        frames += [
            _event("contentBlockDelta", {"delta": {"text": p}, "contentBlockIndex": 0})
            for p in sc.pieces()
        ]
        frames.append(_event("contentBlockStop", {"contentBlockIndex": 0}))
        frames.append(_event("messageStop", {"stopReason": sc.stop_reason}))
        frames.append(
            _event(
                "metadata",
                {"usage": sc.usage.converse_json(), "metrics": {"latencyMs": sc.latency_ms}},
            )
        )
        self._stream(ex, sc, frames)

    # -- InvokeModel -----------------------------------------------------------
    def _invoke(self, req: RecordedRequest, ex: Exchange, sc: BedrockScenario) -> None:
        model_id = self.model_id(req)
        body = req.json if isinstance(req.json, dict) else {}
        obj = self._family_body(family_of(model_id), model_id, body, sc)
        ex.send_json(sc.status, obj, {**sc.usage.headers(sc.latency_ms), **sc.headers})

    def _family_body(
        self, family: str, model_id: str, body: dict[str, Any], sc: BedrockScenario
    ) -> dict[str, Any]:
        u, text = sc.usage, sc.text()
        if family == "anthropic":
            return {
                "id": sc.response_id or self._next_id("msg_bdrk_"),
                "type": "message",
                "role": "assistant",
                "model": sc.model or base_model_id(model_id).split(".", 1)[1].split("-v")[0],
                "content": [{"type": "text", "text": text}],
                "stop_reason": sc.stop_reason,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": u.input_tokens,
                    "cache_creation_input_tokens": u.cache_write_input_tokens,
                    "cache_read_input_tokens": u.cache_read_input_tokens,
                    "output_tokens": u.output_tokens,
                },
            }
        if family == "nova":
            return {
                "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                "stopReason": sc.stop_reason,
                "usage": {
                    "inputTokens": u.input_tokens,
                    "outputTokens": u.output_tokens,
                    "totalTokens": u.total_tokens,
                    "cacheReadInputTokenCount": u.cache_read_input_tokens,
                    "cacheWriteInputTokenCount": u.cache_write_input_tokens,
                },
            }
        if family == "titan":
            return {
                "inputTextTokenCount": u.input_tokens,
                "results": [
                    {
                        "tokenCount": u.output_tokens,
                        "outputText": text,
                        "completionReason": "FINISH",
                    }
                ],
            }
        if family == "titan-embed":
            return {
                "embedding": _vector(0, sc.embedding_dim),
                "inputTextTokenCount": u.input_tokens,
            }
        if family == "llama":
            return {
                "generation": text,
                "prompt_token_count": u.input_tokens,
                "generation_token_count": u.output_tokens,
                "stop_reason": "stop",
            }
        if family == "cohere-embed":
            texts = body.get("texts") or []
            return {
                "id": sc.response_id or self._next_id("emb-"),
                "response_type": "embeddings_floats",
                "texts": texts,
                "embeddings": [_vector(i, sc.embedding_dim) for i in range(len(texts) or 1)],
            }
        if family == "cohere":
            return {
                "response_id": sc.response_id or self._next_id("resp-"),
                "generation_id": self._next_id("gen-"),
                "text": text,
                "chat_history": [
                    {"role": "USER", "message": body.get("message", "")},
                    {"role": "CHATBOT", "message": text},
                ],
                "finish_reason": "COMPLETE",
            }
        return {"outputs": [{"text": text, "stop_reason": "stop"}]}

    def _invoke_stream(self, req: RecordedRequest, ex: Exchange, sc: BedrockScenario) -> None:
        model_id = self.model_id(req)
        objs = self._family_stream(family_of(model_id), model_id, sc)
        objs[-1]["amazon-bedrock-invocationMetrics"] = sc.usage.invocation_metrics(sc.latency_ms)
        self._stream(
            ex,
            sc,
            [_chunk(o) for o in objs],
            **{"X-Amzn-Bedrock-Content-Type": "application/json"},
        )

    def _family_stream(
        self, family: str, model_id: str, sc: BedrockScenario
    ) -> list[dict[str, Any]]:
        u, pieces = sc.usage, sc.pieces()
        if family == "anthropic":
            start = self._family_body("anthropic", model_id, {}, sc)
            start.update(content=[], stop_reason=None)
            start["usage"] = {**start["usage"], "output_tokens": 1}
            return [
                {"type": "message_start", "message": start},
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                *(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": p},
                    }
                    for p in pieces
                ),
                {"type": "content_block_stop", "index": 0},
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": sc.stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": u.output_tokens},
                },
                {"type": "message_stop"},
            ]
        if family == "nova":
            return [
                {"messageStart": {"role": "assistant"}},
                *(
                    {"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}}
                    for p in pieces
                ),
                {"contentBlockStop": {"contentBlockIndex": 0}},
                {"messageStop": {"stopReason": sc.stop_reason}},
                {
                    "metadata": {
                        "usage": {"inputTokens": u.input_tokens, "outputTokens": u.output_tokens},
                        "metrics": {},
                        "trace": {},
                    }
                },
            ]
        if family == "titan":
            out = [
                {
                    "outputText": p,
                    "index": 0,
                    "totalOutputTextTokenCount": i + 1,
                    "completionReason": None,
                    "inputTextTokenCount": u.input_tokens if i == 0 else None,
                }
                for i, p in enumerate(pieces)
            ]
            out[-1].update(totalOutputTextTokenCount=u.output_tokens, completionReason="FINISH")
            return out
        if family == "llama":
            out = [
                {
                    "generation": p,
                    "prompt_token_count": u.input_tokens if i == 0 else None,
                    "generation_token_count": i + 1,
                    "stop_reason": None,
                }
                for i, p in enumerate(pieces)
            ]
            out[-1].update(generation_token_count=u.output_tokens, stop_reason="stop")
            return out
        if family == "cohere":
            out = [
                {"is_finished": False, "event_type": "text-generation", "text": p} for p in pieces
            ]
            out.append(
                {
                    "is_finished": True,
                    "event_type": "stream-end",
                    "finish_reason": "COMPLETE",
                    "response": {"text": sc.text(), "finish_reason": "COMPLETE"},
                }
            )
            return out
        out = [{"outputs": [{"text": p, "stop_reason": None}]} for p in pieces]
        out[-1]["outputs"][0]["stop_reason"] = "stop"
        return out
