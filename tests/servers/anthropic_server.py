"""Fake Anthropic Messages API server.

Point the real SDK at it with::

    client = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0)

Routes: ``POST /v1/messages`` (``client.beta.messages.*`` in SDK 2.14 posts to the
same path, no ``?beta=true`` query, with an ``anthropic-beta: a,b`` header when
``betas=[...]`` is given; everything is recorded) and
``POST /v1/messages/count_tokens`` (answers ``{"input_tokens": usage.input_tokens}``).

Defaults (``AnthropicScenario()``), all deterministic:

* model: requested model mapped through :data:`MODEL_SNAPSHOTS`
  (``claude-sonnet-4-5`` -> ``claude-sonnet-4-5-20250929``; unknown names echoed);
* id ``msg_fake000...N`` from a per-server counter (``response_id=`` overrides);
* ``chunks=5`` ``text_delta`` events with text ``"t0 t1 t2 t3 t4 "``
  (``content=`` overrides -- pass JSON for ``messages.parse(output_format=...)``);
* ``stop_reason="end_turn"``, ``stop_sequence=None``;
* usage :class:`AnthropicUsage`: ``input_tokens=17``, ``output_tokens=9``,
  ``cache_creation_input_tokens=0``, ``cache_read_input_tokens=0``,
  ``cache_creation={"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}``,
  ``service_tier="standard"``; ``server_tool_use`` is only sent when
  ``web_search_requests``/``web_fetch_requests`` is not ``None``.

Streaming (``stream: true``) follows the real API::

    event: message_start        (usage: input + cache fields, output_tokens=1)
    event: content_block_start  (+ a thinking block first if ``thinking=`` is set)
    event: ping
    event: content_block_delta  x chunks (text_delta)
    event: content_block_stop
    event: message_delta        (stop_reason; usage: final output_tokens plus the
                                 input/cache fields, as the current API sends them;
                                 ``delta_usage_input_fields=False`` sends only
                                 output_tokens like the older API)
    event: message_stop

Knobs (see also ``tests/servers/base.py``)::

    server.next(usage=AnthropicUsage(input_tokens=100, output_tokens=50,
                                     cache_read_input_tokens=30))
    server.next(chunks=500, stop_reason="max_tokens", model="claude-x-20990101")
    server.next(thinking="Let me think", signature="sig")   # extended-thinking block
    server.next_error(429)             # anthropic.RateLimitError (rate_limit_error body)
    server.next_error(529)             # anthropic.OverloadedError (overloaded_error)
    server.next(error_after=3)         # ``event: error`` (overloaded_error) after 3 events
    server.next(drop_after=3) / server.next(truncate_after=3) / server.next(chunk_delay=0.05)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import (
    ErrorStep,
    Exchange,
    FakeProviderServer,
    RecordedRequest,
    ScenarioBase,
    split_text,
)

__all__ = ["MODEL_SNAPSHOTS", "AnthropicFakeServer", "AnthropicScenario", "AnthropicUsage"]

MODEL_SNAPSHOTS: dict[str, str] = {
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
}


@dataclass
class AnthropicUsage:
    input_tokens: int = 17
    output_tokens: int = 9
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0
    service_tier: str | None = "standard"
    web_search_requests: int | None = None
    web_fetch_requests: int | None = None

    def _server_tool_use(self) -> dict[str, int] | None:
        if self.web_search_requests is None and self.web_fetch_requests is None:
            return None
        return {
            "web_search_requests": self.web_search_requests or 0,
            "web_fetch_requests": self.web_fetch_requests or 0,
        }

    def message_json(self, output_tokens: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.ephemeral_5m_input_tokens,
                "ephemeral_1h_input_tokens": self.ephemeral_1h_input_tokens,
            },
            "output_tokens": self.output_tokens if output_tokens is None else output_tokens,
        }
        stu = self._server_tool_use()
        if stu is not None:
            out["server_tool_use"] = stu
        if self.service_tier is not None:
            out["service_tier"] = self.service_tier
        return out

    def delta_json(self, include_input_fields: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if include_input_fields:
            out["input_tokens"] = self.input_tokens
            out["cache_creation_input_tokens"] = self.cache_creation_input_tokens
            out["cache_read_input_tokens"] = self.cache_read_input_tokens
        out["output_tokens"] = self.output_tokens
        stu = self._server_tool_use()
        if stu is not None:
            out["server_tool_use"] = stu
        return out


@dataclass
class AnthropicScenario(ScenarioBase):
    usage: AnthropicUsage = field(default_factory=AnthropicUsage)
    stop_reason: str | None = "end_turn"
    stop_sequence: str | None = None
    #: when set, a thinking block (streamed as ``chunks`` thinking_delta pieces
    #: split like the text, then one signature_delta) precedes the text block
    thinking: str | None = None
    signature: str = "EqQBCgIYAhIM-fake-signature"
    #: message_delta usage includes input/cache fields (current API behaviour)
    delta_usage_input_fields: bool = True
    #: send ``event: error`` after this many SSE events
    error_after: int | None = None
    error_type: str = "overloaded_error"
    error_message: str = "Overloaded"

    @property
    def finish_reason(self) -> str | None:
        return self.stop_reason


_ERROR_TYPES = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


class AnthropicFakeServer(FakeProviderServer[AnthropicScenario]):
    Scenario = AnthropicScenario
    DEFAULT_MODEL_MAP = MODEL_SNAPSHOTS

    def client(self, **kwargs: Any) -> Any:
        """A real ``anthropic.Anthropic`` pointed at this server (``max_retries=0``)."""
        import anthropic

        kwargs.setdefault("api_key", "sk-ant-test")
        kwargs.setdefault("max_retries", 0)
        return anthropic.Anthropic(base_url=self.url, **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        """A real ``anthropic.AsyncAnthropic`` pointed at this server (``max_retries=0``)."""
        import anthropic

        kwargs.setdefault("api_key", "sk-ant-test")
        kwargs.setdefault("max_retries", 0)
        return anthropic.AsyncAnthropic(base_url=self.url, **kwargs)

    def common_headers(self) -> dict[str, str]:
        return {
            "request-id": self._next_id("req_fake"),
            "anthropic-organization-id": "00000000-0000-0000-0000-000000000000",
        }

    def error_body(self, step: ErrorStep) -> Any:
        etype, message = _ERROR_TYPES.get(
            step.status, ("api_error" if step.status >= 500 else "invalid_request_error", "Error")
        )
        return {
            "type": "error",
            "error": {"type": step.type or etype, "message": step.message or message},
            "request_id": self._next_id("req_fake"),
        }

    def route(self, req: RecordedRequest) -> Any:
        if req.method != "POST":
            return None
        path = req.path.rstrip("/")
        if path.endswith("/v1/messages"):
            return self._messages
        if path.endswith("/v1/messages/count_tokens"):
            return self._count_tokens
        return None

    def _count_tokens(self, req: RecordedRequest, ex: Exchange, sc: AnthropicScenario) -> None:
        ex.send_json(sc.status, {"input_tokens": sc.usage.input_tokens}, sc.headers)

    def _messages(self, req: RecordedRequest, ex: Exchange, sc: AnthropicScenario) -> None:
        body = req.json if isinstance(req.json, dict) else {}
        model = self.served_model(sc, body.get("model"))
        mid = sc.response_id or self._next_id("msg_fake")
        text = sc.text()

        def message(content: list[Any], stop_reason: Any, usage: dict[str, Any]) -> dict:
            return {
                "id": mid,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": sc.stop_sequence if stop_reason is not None else None,
                "usage": usage,
            }

        blocks: list[dict[str, Any]] = []
        if sc.thinking is not None:
            blocks.append({"type": "thinking", "thinking": sc.thinking, "signature": sc.signature})
        blocks.append({"type": "text", "text": text})

        if not body.get("stream"):
            ex.send_json(
                sc.status, message(blocks, sc.stop_reason, sc.usage.message_json()), sc.headers
            )
            return

        events: list[tuple[str | None, Any]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": message([], None, sc.usage.message_json(output_tokens=1)),
                },
            )
        ]
        index = 0
        if sc.thinking is not None:
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                    },
                )
            )
            events.append(("ping", {"type": "ping"}))
            for piece in split_text(sc.thinking, sc.chunks):
                events.append(
                    (
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "thinking_delta", "thinking": piece},
                        },
                    )
                )
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "signature_delta", "signature": sc.signature},
                    },
                )
            )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        events.append(
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        if sc.thinking is None:
            events.append(("ping", {"type": "ping"}))
        for piece in sc.pieces():
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": sc.stop_reason, "stop_sequence": sc.stop_sequence},
                    "usage": sc.usage.delta_json(sc.delta_usage_input_fields),
                },
            )
        )
        terminator: list[tuple[str | None, Any]] = [("message_stop", {"type": "message_stop"})]
        if sc.error_after is not None:
            events = [
                *events[: sc.error_after],
                (
                    "error",
                    {
                        "type": "error",
                        "error": {"type": sc.error_type, "message": sc.error_message},
                    },
                ),
            ]
            terminator = []
        ex.start_sse(sc.status, sc.headers)
        ex.stream_events(events, sc, terminator=terminator)
