"""Fake Groq API server (OpenAI-compatible chat completions under ``/openai/v1``).

Point the real SDK at it with::

    client = groq.Groq(api_key="gsk-test", base_url=server.url, max_retries=0)

(the SDK adds ``/openai/v1/chat/completions`` to the base URL itself).  Route:
``POST /openai/v1/chat/completions``; anything else answers 404.

Defaults (``GroqScenario()``), all deterministic:

* model echoed as requested (``llama-3.3-70b-versatile``); id ``chatcmpl-fake000...N``;
* ``chunks=5`` pieces ``"t0 t1 t2 t3 t4 "``; ``finish_reason="stop"``;
  ``system_fingerprint="fp_fake00001"``; ``x_groq.id`` ``req_fake...``;
* usage :class:`GroqUsage` ``prompt_tokens=19``, ``completion_tokens=6``,
  ``total_tokens=25`` plus Groq's timings (``queue_time``, ``prompt_time``,
  ``completion_time``, ``total_time``: floats).

Streaming (``stream: true``): a role chunk (with ``x_groq.id``), ``chunks`` content
chunks, and a final chunk with ``finish_reason`` whose ``x_groq.usage`` carries the usage
**always**; when the request has ``stream_options.include_usage`` that same chunk also has
a top-level ``usage`` (groq 1.x has no ``stream_options`` parameter: pass it in
``extra_body``).  Then ``data: [DONE]``.

Errors: ``server.next_error(status)`` answers ``{"error": {"message", "type", "code"}}``
(``groq.RateLimitError`` for 429, ``BadRequestError`` 400, ``InternalServerError`` 500;
their ``.body`` is the whole JSON, ``{"error": {...}}``);
``server.next(error_after=2)`` sends ``data: {"error": ...}`` after 2 events (the SDK
raises ``groq.APIError``); ``drop_after`` / ``truncate_after`` / ``chunk_delay`` as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import ErrorStep, Exchange, FakeProviderServer, RecordedRequest, ScenarioBase

__all__ = ["GroqFakeServer", "GroqScenario", "GroqUsage"]


@dataclass
class GroqUsage:
    prompt_tokens: int = 19
    completion_tokens: int = 6
    total_tokens: int | None = None
    queue_time: float = 0.012
    prompt_time: float = 0.003
    completion_time: float = 0.021
    total_time: float | None = None

    def __post_init__(self) -> None:
        if self.total_tokens is None:
            self.total_tokens = self.prompt_tokens + self.completion_tokens
        if self.total_time is None:
            self.total_time = round(self.prompt_time + self.completion_time, 6)

    def json(self) -> dict[str, Any]:
        return {
            "queue_time": self.queue_time,
            "prompt_tokens": self.prompt_tokens,
            "prompt_time": self.prompt_time,
            "completion_tokens": self.completion_tokens,
            "completion_time": self.completion_time,
            "total_tokens": self.total_tokens,
            "total_time": self.total_time,
        }


@dataclass
class GroqScenario(ScenarioBase):
    usage: GroqUsage = field(default_factory=GroqUsage)
    finish_reason: str = "stop"
    created: int = 1_700_000_000
    system_fingerprint: str = "fp_fake00001"
    error_after: int | None = None
    error_message: str = "Service Unavailable"


_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Invalid API Key"),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    413: ("invalid_request_error", "request_too_large", "Request Entity Too Large"),
    429: (
        "tokens",
        "rate_limit_exceeded",
        "Rate limit reached for model on tokens per minute (TPM). Please try again in 1ms.",
    ),
    500: ("internal_server_error", None, "Internal Server Error"),
    503: ("internal_server_error", "service_unavailable", "Service Unavailable"),
}


class GroqFakeServer(FakeProviderServer[GroqScenario]):
    Scenario = GroqScenario

    def client(self, **kwargs: Any) -> Any:
        """A real ``groq.Groq`` pointed here (``max_retries=0``)."""
        import groq

        kwargs.setdefault("api_key", "gsk-test")
        kwargs.setdefault("max_retries", 0)
        return groq.Groq(base_url=self.url, **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        """A real ``groq.AsyncGroq`` pointed here (``max_retries=0``)."""
        import groq

        kwargs.setdefault("api_key", "gsk-test")
        kwargs.setdefault("max_retries", 0)
        return groq.AsyncGroq(base_url=self.url, **kwargs)

    def common_headers(self) -> dict[str, str]:
        return {
            "x-request-id": self._next_id("req_fake"),
            "x-ratelimit-remaining-requests": "14399",
            "x-ratelimit-remaining-tokens": "5999",
        }

    def error_body(self, step: ErrorStep) -> Any:
        etype, code, message = _ERRORS.get(
            step.status,
            ("internal_server_error" if step.status >= 500 else "invalid_request_error", None, ""),
        )
        return {
            "error": {
                "message": step.message or message or "Error",
                "type": step.type or etype,
                "code": step.code if step.code is not None else code,
            }
        }

    def route(self, req: RecordedRequest) -> Any:
        if req.method == "POST" and req.path.rstrip("/").endswith("/openai/v1/chat/completions"):
            return self._chat
        return None

    def _chat(self, req: RecordedRequest, ex: Exchange, sc: GroqScenario) -> None:
        body = req.json if isinstance(req.json, dict) else {}
        model = self.served_model(sc, body.get("model"))
        rid = sc.response_id or self._next_id("chatcmpl-fake")
        x_groq_id = self._next_id("req_fake")
        if not body.get("stream"):
            obj = {
                "id": rid,
                "object": "chat.completion",
                "created": sc.created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": sc.text()},
                        "logprobs": None,
                        "finish_reason": sc.finish_reason,
                    }
                ],
                "usage": sc.usage.json(),
                "usage_breakdown": None,
                "system_fingerprint": sc.system_fingerprint,
                "x_groq": {"id": x_groq_id},
                "service_tier": "on_demand",
            }
            ex.send_json(sc.status, obj, sc.headers)
            return

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": sc.created,
                "model": model,
                "system_fingerprint": sc.system_fingerprint,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }

        first = chunk({"role": "assistant", "content": ""})
        first["x_groq"] = {"id": x_groq_id}
        events: list[tuple[str | None, Any]] = [(None, first)]
        events += [(None, chunk({"content": p})) for p in sc.pieces()]
        last = chunk({}, sc.finish_reason)
        last["x_groq"] = {"id": x_groq_id, "usage": sc.usage.json()}
        opts = body.get("stream_options")
        if isinstance(opts, dict) and opts.get("include_usage") is True:
            last["usage"] = sc.usage.json()
        terminator: list[tuple[str | None, Any]] = [(None, last), (None, "[DONE]")]
        if sc.error_after is not None:
            events = [
                *events[: sc.error_after],
                (None, {"error": {"message": sc.error_message, "type": "internal_server_error"}}),
            ]
            terminator = []
        ex.start_sse(sc.status, sc.headers)
        ex.stream_events(events, sc, terminator=terminator)
