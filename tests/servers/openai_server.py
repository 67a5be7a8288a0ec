"""Fake OpenAI API server (chat completions, responses, legacy completions, embeddings).

Point the real SDK at it with::

    client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)

Routes (matched on the path suffix, so a base_url without ``/v1`` works too):
``POST /v1/chat/completions``, ``POST /v1/responses``, ``POST /v1/completions``,
``POST /v1/embeddings``.  Anything else answers 404 with an OpenAI error body.

Defaults (``OpenAIScenario()``), all deterministic:

* model: requested model mapped through :data:`MODEL_SNAPSHOTS`
  (``gpt-4o-mini`` -> ``gpt-4o-mini-2024-07-18``; unknown names are echoed);
* ids: ``chatcmpl-fake000...1``, ``resp_fake...``, ``cmpl-fake...`` from a
  per-server counter (``response_id=`` overrides);
* ``chunks=5`` content deltas, text ``"t0 t1 t2 t3 t4 "`` (``content=`` overrides;
  for ``chat.completions.parse`` / ``responses.parse`` pass a JSON string);
* ``finish_reason="stop"``, ``created=1700000000``,
  ``system_fingerprint="fp_fake00001"``, ``service_tier="default"``;
* usage :class:`OpenAIUsage`: ``prompt_tokens=13``, ``completion_tokens=7``,
  ``total_tokens=20`` (prompt+completion unless given), every detail field 0.
  The Responses API reports the same numbers as ``input_tokens`` /
  ``output_tokens`` (``cached_tokens``, ``reasoning_tokens`` map 1:1);
  embeddings report ``prompt_tokens`` and ``total_tokens = prompt_tokens``.

Streaming (``stream: true``):

* chat: role chunk, ``chunks`` content chunks, a finish_reason chunk, then --
  only if the request had ``stream_options.include_usage == true`` -- a usage
  chunk with ``"choices": []`` (and every other chunk carries ``"usage": null``),
  then ``data: [DONE]``.  ``stream_usage=True/False`` forces/suppresses the usage
  chunk regardless of the request (e.g. to mimic proxies).
* legacy completions: ``chunks`` text chunks, a finish_reason chunk, optional usage
  chunk (same rule), ``[DONE]``.
* responses: ``response.created``, ``response.in_progress``,
  ``response.output_item.added``, ``response.content_part.added``,
  ``response.output_text.delta`` x chunks, ``response.output_text.done``,
  ``response.content_part.done``, ``response.output_item.done``,
  ``response.completed`` (full response incl. usage), each with ``event:`` +
  ``data:`` lines and a ``sequence_number``.

Knobs (see also ``tests/servers/base.py``)::

    server.next(usage=OpenAIUsage(prompt_tokens=100, completion_tokens=50, cached_tokens=20))
    server.next(model="gpt-4o-mini-2024-07-18", chunks=500, finish_reason="length")
    server.next_error(429)                 # openai.RateLimitError (once)
    server.next_error(500, times=2)        # openai.InternalServerError twice
    server.next(drop_after=3)              # connection killed after 3 SSE events
    server.next(truncate_after=3)          # stream ends without [DONE]/finish chunk
    server.next(error_after=2)             # ``data: {"error": ...}`` after 2 events
    server.configure(usage=...)            # change the default for every later call
    server.usage                           # the default usage (OpenAIUsage)
    server.requests[-1].json["stream_options"], server.requests[-1].headers["baggage"]
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field
from typing import Any

from .base import ErrorStep, Exchange, FakeProviderServer, RecordedRequest, ScenarioBase

__all__ = ["MODEL_SNAPSHOTS", "OpenAIFakeServer", "OpenAIScenario", "OpenAIUsage"]

MODEL_SNAPSHOTS: dict[str, str] = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
}


@dataclass
class OpenAIUsage:
    """Token usage served by the fake (``total_tokens`` defaults to prompt+completion)."""

    prompt_tokens: int = 13
    completion_tokens: int = 7
    total_tokens: int | None = None
    cached_tokens: int = 0
    prompt_audio_tokens: int = 0
    reasoning_tokens: int = 0
    completion_audio_tokens: int = 0
    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0
    #: Responses API ``input_tokens_details.cache_write_tokens``
    cache_write_tokens: int = 0
    #: ``usage.cost`` in USD, as OpenRouter reports what it charged (omitted when None)
    cost: float | None = None

    def __post_init__(self) -> None:
        if self.total_tokens is None:
            self.total_tokens = self.prompt_tokens + self.completion_tokens

    # aliases in Responses-API vocabulary
    @property
    def input_tokens(self) -> int:
        return self.prompt_tokens

    @property
    def output_tokens(self) -> int:
        return self.completion_tokens

    def _with_cost(self, usage: dict[str, Any]) -> dict[str, Any]:
        if self.cost is not None:
            usage["cost"] = self.cost
        return usage

    def chat_json(self) -> dict[str, Any]:
        return self._with_cost(
            {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens,
                "prompt_tokens_details": {
                    "cached_tokens": self.cached_tokens,
                    "audio_tokens": self.prompt_audio_tokens,
                },
                "completion_tokens_details": {
                    "reasoning_tokens": self.reasoning_tokens,
                    "audio_tokens": self.completion_audio_tokens,
                    "accepted_prediction_tokens": self.accepted_prediction_tokens,
                    "rejected_prediction_tokens": self.rejected_prediction_tokens,
                },
            }
        )

    def completions_json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }

    def responses_json(self) -> dict[str, Any]:
        return self._with_cost(
            {
                "input_tokens": self.prompt_tokens,
                "input_tokens_details": {
                    "cached_tokens": self.cached_tokens,
                    "cache_write_tokens": self.cache_write_tokens,
                },
                "output_tokens": self.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
                "total_tokens": self.total_tokens,
            }
        )

    def embeddings_json(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "total_tokens": self.prompt_tokens}


@dataclass
class OpenAIScenario(ScenarioBase):
    usage: OpenAIUsage = field(default_factory=OpenAIUsage)
    finish_reason: str = "stop"
    created: int = 1_700_000_000
    system_fingerprint: str | None = "fp_fake00001"
    service_tier: str | None = "default"
    #: None: follow the request's ``stream_options.include_usage``
    stream_usage: bool | None = None
    #: send a ``{"error": ...}`` data event after this many SSE events
    error_after: int | None = None
    error_message: str = "The server had an error while processing your request."
    #: chat only: list of ``{"name": ..., "arguments": "<json>"}`` tool calls
    tool_calls: list[dict[str, Any]] | None = None
    #: embeddings vector size when the request has no ``dimensions``
    embedding_dim: int = 8
    #: Responses API ``status`` (``"incomplete"`` adds ``incomplete_details``)
    response_status: str = "completed"


_ERROR_TYPES = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-test."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 1ms.",
    ),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded."),
}


def _embedding_vector(index: int, dim: int) -> list[float]:
    # multiples of 1/64 are exact in float32, so base64 round trips are lossless
    return [((index * 7 + j) % 64) / 64 - 0.5 for j in range(dim)]


class OpenAIFakeServer(FakeProviderServer[OpenAIScenario]):
    Scenario = OpenAIScenario
    DEFAULT_MODEL_MAP = MODEL_SNAPSHOTS

    def client(self, **kwargs: Any) -> Any:
        """A real ``openai.OpenAI`` pointed at this server (``max_retries=0``)."""
        import openai

        kwargs.setdefault("api_key", "sk-test")
        kwargs.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=self.url + "/v1", **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        """A real ``openai.AsyncOpenAI`` pointed at this server (``max_retries=0``)."""
        import openai

        kwargs.setdefault("api_key", "sk-test")
        kwargs.setdefault("max_retries", 0)
        return openai.AsyncOpenAI(base_url=self.url + "/v1", **kwargs)

    def common_headers(self) -> dict[str, str]:
        return {
            "x-request-id": self._next_id("req_"),
            "openai-processing-ms": "12",
            "openai-version": "2020-10-01",
        }

    def error_body(self, step: ErrorStep) -> Any:
        etype, code, message = _ERROR_TYPES.get(
            step.status,
            ("server_error" if step.status >= 500 else "invalid_request_error", None, "Error."),
        )
        return {
            "error": {
                "message": step.message or message,
                "type": step.type or etype,
                "param": step.param,
                "code": step.code if step.code is not None else code,
            }
        }

    def route(self, req: RecordedRequest) -> Any:
        if req.method != "POST":
            return None
        path = req.path.rstrip("/")
        if path.endswith("/chat/completions"):
            return self._chat
        if path.endswith("/responses"):
            return self._responses
        if path.endswith("/completions"):
            return self._completions
        if path.endswith("/embeddings"):
            return self._embeddings
        return None

    # -- helpers ---------------------------------------------------------------
    @staticmethod
    def _body(req: RecordedRequest) -> dict[str, Any]:
        return req.json if isinstance(req.json, dict) else {}

    def _wants_usage(self, sc: OpenAIScenario, body: dict[str, Any]) -> bool:
        if sc.stream_usage is not None:
            return sc.stream_usage
        opts = body.get("stream_options")
        return isinstance(opts, dict) and opts.get("include_usage") is True

    def _mid_stream_error(self, sc: OpenAIScenario) -> dict[str, Any]:
        return {
            "error": {
                "message": sc.error_message,
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }

    def _stream(
        self,
        ex: Exchange,
        sc: OpenAIScenario,
        events: list[tuple[str | None, Any]],
        terminator: list[tuple[str | None, Any]],
        error_event: tuple[str | None, Any],
    ) -> None:
        ex.start_sse(sc.status, sc.headers)
        if sc.error_after is not None:
            events = [*events[: sc.error_after], error_event]
            terminator = []
        ex.stream_events(events, sc, terminator=terminator)

    def _tool_calls_json(self, sc: OpenAIScenario) -> list[dict[str, Any]]:
        return [
            {
                "id": tc.get("id") or f"call_fake{i:04d}",
                "type": "function",
                "function": {"name": tc["name"], "arguments": tc.get("arguments", "{}")},
            }
            for i, tc in enumerate(sc.tool_calls or [])
        ]

    # -- chat completions ------------------------------------------------------
    def _chat(self, req: RecordedRequest, ex: Exchange, sc: OpenAIScenario) -> None:
        body = self._body(req)
        model = self.served_model(sc, body.get("model"))
        rid = sc.response_id or self._next_id("chatcmpl-fake")
        finish = sc.finish_reason
        if sc.tool_calls and finish == "stop":
            finish = "tool_calls"
        if not body.get("stream"):
            n = int(body.get("n") or 1)
            message: dict[str, Any] = {
                "role": "assistant",
                "content": None if sc.tool_calls else sc.text(),
                "refusal": None,
                "annotations": [],
            }
            if sc.tool_calls:
                message["tool_calls"] = self._tool_calls_json(sc)
            obj = {
                "id": rid,
                "object": "chat.completion",
                "created": sc.created,
                "model": model,
                "choices": [
                    {"index": i, "message": message, "logprobs": None, "finish_reason": finish}
                    for i in range(n)
                ],
                "usage": sc.usage.chat_json(),
                "service_tier": sc.service_tier,
                "system_fingerprint": sc.system_fingerprint,
            }
            ex.send_json(sc.status, obj, sc.headers)
            return

        with_usage = self._wants_usage(sc, body)

        def chunk(choices: list[dict[str, Any]], usage: Any = None) -> dict[str, Any]:
            c: dict[str, Any] = {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": sc.created,
                "model": model,
                "service_tier": sc.service_tier,
                "system_fingerprint": sc.system_fingerprint,
                "choices": choices,
            }
            if with_usage:
                c["usage"] = usage
            return c

        def choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": finish_reason,
            }

        events: list[tuple[str | None, Any]] = []
        if sc.tool_calls:
            events.append((None, chunk([choice({"role": "assistant", "content": None})])))
            for i, tc in enumerate(self._tool_calls_json(sc)):
                events.append(
                    (
                        None,
                        chunk(
                            [
                                choice(
                                    {
                                        "tool_calls": [
                                            {
                                                "index": i,
                                                "id": tc["id"],
                                                "type": "function",
                                                "function": {
                                                    "name": tc["function"]["name"],
                                                    "arguments": "",
                                                },
                                            }
                                        ]
                                    }
                                )
                            ]
                        ),
                    )
                )
                events.append(
                    (
                        None,
                        chunk(
                            [
                                choice(
                                    {
                                        "tool_calls": [
                                            {
                                                "index": i,
                                                "function": {
                                                    "arguments": tc["function"]["arguments"]
                                                },
                                            }
                                        ]
                                    }
                                )
                            ]
                        ),
                    )
                )
        else:
            events.append(
                (None, chunk([choice({"role": "assistant", "content": "", "refusal": None})]))
            )
            events.extend((None, chunk([choice({"content": p})])) for p in sc.pieces())
        terminator: list[tuple[str | None, Any]] = [(None, chunk([choice({}, finish)]))]
        if with_usage:
            terminator.append((None, chunk([], sc.usage.chat_json())))
        terminator.append((None, "[DONE]"))
        self._stream(ex, sc, events, terminator, (None, self._mid_stream_error(sc)))

    # -- legacy completions ----------------------------------------------------
    def _completions(self, req: RecordedRequest, ex: Exchange, sc: OpenAIScenario) -> None:
        body = self._body(req)
        model = self.served_model(sc, body.get("model"))
        rid = sc.response_id or self._next_id("cmpl-fake")
        if not body.get("stream"):
            obj = {
                "id": rid,
                "object": "text_completion",
                "created": sc.created,
                "model": model,
                "choices": [
                    {
                        "text": sc.text(),
                        "index": 0,
                        "logprobs": None,
                        "finish_reason": sc.finish_reason,
                    }
                ],
                "usage": sc.usage.completions_json(),
                "system_fingerprint": sc.system_fingerprint,
            }
            ex.send_json(sc.status, obj, sc.headers)
            return

        with_usage = self._wants_usage(sc, body)

        def chunk(choices: list[dict[str, Any]], usage: Any = None) -> dict[str, Any]:
            c: dict[str, Any] = {
                "id": rid,
                "object": "text_completion",
                "created": sc.created,
                "choices": choices,
                "model": model,
                "system_fingerprint": sc.system_fingerprint,
            }
            if with_usage:
                c["usage"] = usage
            return c

        def choice(text: str, finish: str | None = None) -> dict[str, Any]:
            return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}

        events: list[tuple[str | None, Any]] = [(None, chunk([choice(p)])) for p in sc.pieces()]
        terminator: list[tuple[str | None, Any]] = [(None, chunk([choice("", sc.finish_reason)]))]
        if with_usage:
            terminator.append((None, chunk([], sc.usage.completions_json())))
        terminator.append((None, "[DONE]"))
        self._stream(ex, sc, events, terminator, (None, self._mid_stream_error(sc)))

    # -- embeddings ------------------------------------------------------------
    def _embeddings(self, req: RecordedRequest, ex: Exchange, sc: OpenAIScenario) -> None:
        body = self._body(req)
        inp = body.get("input")
        many = isinstance(inp, list) and inp and not isinstance(inp[0], int)
        count = len(inp) if many else 1
        dim = int(body.get("dimensions") or sc.embedding_dim)
        use_b64 = body.get("encoding_format") == "base64"
        data = []
        for i in range(count):
            vec = _embedding_vector(i, dim)
            emb: Any = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode() if use_b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        obj = {
            "object": "list",
            "data": data,
            "model": self.served_model(sc, body.get("model")),
            "usage": sc.usage.embeddings_json(),
        }
        ex.send_json(sc.status, obj, sc.headers)

    # -- responses API ---------------------------------------------------------
    def _responses(self, req: RecordedRequest, ex: Exchange, sc: OpenAIScenario) -> None:
        body = self._body(req)
        model = self.served_model(sc, body.get("model"))
        rid = sc.response_id or self._next_id("resp_fake")
        msg_id = "msg_" + rid.removeprefix("resp_")
        text = sc.text()

        def response(status: str, output: list[Any], usage: Any) -> dict[str, Any]:
            incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
            return {
                "id": rid,
                "object": "response",
                "created_at": sc.created,
                "status": status,
                "background": False,
                "completed_at": sc.created + 1 if status == "completed" else None,
                "error": None,
                "incomplete_details": incomplete,
                "instructions": body.get("instructions"),
                "max_output_tokens": body.get("max_output_tokens"),
                "max_tool_calls": body.get("max_tool_calls"),
                "model": model,
                "output": output,
                "parallel_tool_calls": body.get("parallel_tool_calls", True),
                "previous_response_id": body.get("previous_response_id"),
                "prompt_cache_key": body.get("prompt_cache_key"),
                "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
                "safety_identifier": body.get("safety_identifier"),
                "service_tier": sc.service_tier,
                "store": body.get("store", True),
                "temperature": body.get("temperature", 1.0),
                "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
                "tool_choice": body.get("tool_choice", "auto"),
                "tools": body.get("tools", []),
                "top_logprobs": body.get("top_logprobs", 0),
                "top_p": body.get("top_p", 1.0),
                "truncation": body.get("truncation", "disabled"),
                "usage": usage,
                "user": body.get("user"),
                "metadata": body.get("metadata") or {},
            }

        def part(t: str) -> dict[str, Any]:
            return {"type": "output_text", "annotations": [], "logprobs": [], "text": t}

        def item(status: str, content: list[Any]) -> dict[str, Any]:
            return {
                "id": msg_id,
                "type": "message",
                "status": status,
                "content": content,
                "role": "assistant",
            }

        final_item_status = "completed" if sc.response_status == "completed" else "incomplete"
        final = response(
            sc.response_status,
            [item(final_item_status, [part(text)])],
            sc.usage.responses_json(),
        )
        if not body.get("stream"):
            ex.send_json(sc.status, final, sc.headers)
            return

        seq = iter(range(1_000_000_000))
        events: list[tuple[str | None, Any]] = []

        def ev(etype: str, **payload: Any) -> None:
            events.append((etype, {"type": etype, "sequence_number": next(seq), **payload}))

        ev("response.created", response=response("in_progress", [], None))
        ev("response.in_progress", response=response("in_progress", [], None))
        ev("response.output_item.added", output_index=0, item=item("in_progress", []))
        ev(
            "response.content_part.added",
            item_id=msg_id,
            output_index=0,
            content_index=0,
            part=part(""),
        )
        for p in sc.pieces():
            ev(
                "response.output_text.delta",
                item_id=msg_id,
                output_index=0,
                content_index=0,
                delta=p,
                logprobs=[],
            )
        ev(
            "response.output_text.done",
            item_id=msg_id,
            output_index=0,
            content_index=0,
            text=text,
            logprobs=[],
        )
        ev(
            "response.content_part.done",
            item_id=msg_id,
            output_index=0,
            content_index=0,
            part=part(text),
        )
        ev("response.output_item.done", output_index=0, item=item(final_item_status, [part(text)]))
        done_type = (
            "response.completed" if sc.response_status == "completed" else "response.incomplete"
        )
        events.append(
            (done_type, {"type": done_type, "sequence_number": next(seq), "response": final})
        )
        terminator = [events.pop()]
        n_err = sc.error_after if sc.error_after is not None else 0
        error_event = (
            "error",
            {
                "type": "error",
                "code": "server_error",
                "message": sc.error_message,
                "param": None,
                "sequence_number": n_err,
            },
        )
        self._stream(ex, sc, events, terminator, error_event)
