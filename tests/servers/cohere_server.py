"""Fake Cohere v2 API server (chat, chat stream, embed).

Point the real SDK at it with::

    client = cohere.ClientV2(api_key="test-key", base_url=server.url, max_retries=0)
    aclient = cohere.AsyncClientV2(api_key="test-key", base_url=server.url, max_retries=0)

Routes: ``POST /v2/chat`` (``"stream": true`` in the body for ``chat_stream``) and
``POST /v2/embed``.  Anything else answers 404.

Defaults (``CohereScenario()``), all deterministic:

* ids ``chat-fake000...N`` / ``embed-fake...`` from a per-server counter;
* ``chunks=5`` pieces ``"t0 t1 t2 t3 t4 "``; ``finish_reason="COMPLETE"``;
* usage :class:`CohereUsage`: ``billed_units`` ``input_tokens=12``, ``output_tokens=7``
  (what Cohere charges) and ``tokens`` ``input_tokens=205``, ``output_tokens=9`` (what the
  model saw, with Cohere's prompt template), ``cached_tokens=0``.  The JSON carries whole
  numbers; the SDK's models type them ``float`` (``12.0``).

Streaming (``chat_stream``): SSE with ``event:`` names equal to the ``type`` in the data::

    message-start, content-start, content-delta x chunks, content-end,
    message-end (delta.finish_reason + delta.usage), then ``data: [DONE]``

Embed answers ``embeddings`` by type (``float`` unless ``embedding_types`` asks
otherwise), ``texts`` and ``meta`` with ``billed_units.input_tokens`` (embed's usage is
in ``meta``, not ``usage``).

Errors: ``server.next_error(status)`` answers ``{"id": ..., "message": ...}``; the SDK
raises ``cohere.BadRequestError`` (400), ``UnauthorizedError`` (401),
``TooManyRequestsError`` (429), ``InternalServerError`` (500), all ``ApiError``.
``server.next(error_after=3)`` ends the stream with a ``message-end`` whose
``delta.error`` is set; ``drop_after`` / ``truncate_after`` / ``chunk_delay`` as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import ErrorStep, Exchange, FakeProviderServer, RecordedRequest, ScenarioBase

__all__ = ["CohereFakeServer", "CohereScenario", "CohereUsage"]


@dataclass
class CohereUsage:
    input_tokens: int = 12
    output_tokens: int = 7
    tokens_input: int = 205
    tokens_output: int = 9
    cached_tokens: int = 0

    def json(self) -> dict[str, Any]:
        return {
            "billed_units": {
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
            },
            "tokens": {"input_tokens": self.tokens_input, "output_tokens": self.tokens_output},
            "cached_tokens": self.cached_tokens,
        }

    def embed_meta(self) -> dict[str, Any]:
        return {
            "api_version": {"version": "2"},
            "billed_units": {"input_tokens": self.input_tokens},
        }


@dataclass
class CohereScenario(ScenarioBase):
    usage: CohereUsage = field(default_factory=CohereUsage)
    finish_reason: str = "COMPLETE"
    error_after: int | None = None
    error_message: str = "internal server error, this has been reported to our developers"
    embedding_dim: int = 8


_MESSAGES = {
    400: "invalid request: model 'x' not found",
    401: "invalid api token",
    404: "model not found",
    422: "invalid request",
    429: "You are using a Trial key, which is limited to 10 API calls / minute.",
    500: "internal server error, this has been reported to our developers",
    503: "service unavailable",
}


class CohereFakeServer(FakeProviderServer[CohereScenario]):
    Scenario = CohereScenario

    def client(self, **kwargs: Any) -> Any:
        """A real ``cohere.ClientV2`` pointed here (``max_retries=0``)."""
        import cohere

        kwargs.setdefault("api_key", "test-key")
        kwargs.setdefault("max_retries", 0)
        return cohere.ClientV2(base_url=self.url, **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        """A real ``cohere.AsyncClientV2`` pointed here (``max_retries=0``)."""
        import cohere

        kwargs.setdefault("api_key", "test-key")
        kwargs.setdefault("max_retries", 0)
        return cohere.AsyncClientV2(base_url=self.url, **kwargs)

    def common_headers(self) -> dict[str, str]:
        return {"x-trial-endpoint-call-remaining": "999", "num_tokens": "0"}

    def error_body(self, step: ErrorStep) -> Any:
        message = _MESSAGES.get(step.status, "error")
        return {"id": self._next_id("err-"), "message": step.message or message}

    def route(self, req: RecordedRequest) -> Any:
        if req.method != "POST":
            return None
        path = req.path.rstrip("/")
        if path.endswith("/v2/chat"):
            return self._chat
        if path.endswith("/v2/embed"):
            return self._embed
        return None

    def _chat(self, req: RecordedRequest, ex: Exchange, sc: CohereScenario) -> None:
        body = req.json if isinstance(req.json, dict) else {}
        cid = sc.response_id or self._next_id("chat-fake")
        if not body.get("stream"):
            obj = {
                "id": cid,
                "message": {"role": "assistant", "content": [{"type": "text", "text": sc.text()}]},
                "finish_reason": sc.finish_reason,
                "usage": sc.usage.json(),
            }
            ex.send_json(sc.status, obj, sc.headers)
            return

        def ev(etype: str, **payload: Any) -> tuple[str, dict[str, Any]]:
            return etype, {"type": etype, **payload}

        events = [
            ev(
                "message-start",
                id=cid,
                delta={
                    "message": {
                        "role": "assistant",
                        "content": [],
                        "tool_plan": "",
                        "tool_calls": [],
                        "citations": [],
                    }
                },
            ),
            ev(
                "content-start",
                index=0,
                delta={"message": {"content": {"type": "text", "text": ""}}},
            ),
        ]
        events += [
            ev("content-delta", index=0, delta={"message": {"content": {"text": p}}})
            for p in sc.pieces()
        ]
        events.append(ev("content-end", index=0))
        end = ev("message-end", delta={"finish_reason": sc.finish_reason, "usage": sc.usage.json()})
        terminator: list[tuple[str | None, Any]] = [end, (None, "[DONE]")]
        if sc.error_after is not None:
            events = events[: sc.error_after]
            terminator = [
                ev("message-end", delta={"finish_reason": "ERROR", "error": sc.error_message})
            ]
        ex.start_sse(sc.status, sc.headers)
        ex.stream_events(events, sc, terminator=terminator)

    def _embed(self, req: RecordedRequest, ex: Exchange, sc: CohereScenario) -> None:
        body = req.json if isinstance(req.json, dict) else {}
        texts = body.get("texts") or []
        count = len(texts) or len(body.get("inputs") or body.get("images") or []) or 1
        vectors = [
            [((i * 7 + j) % 64) / 64 - 0.5 for j in range(sc.embedding_dim)] for i in range(count)
        ]
        kinds = body.get("embedding_types") or ["float"]
        embeddings: dict[str, Any] = {}
        for kind in kinds:
            if kind == "float":
                embeddings["float"] = vectors
            else:  # int8, uint8, binary, ubinary: small ints are valid for each
                embeddings[kind] = [[j % 2 for j in range(sc.embedding_dim)] for _ in vectors]
        obj = {
            "id": sc.response_id or self._next_id("embed-fake"),
            "embeddings": embeddings,
            "texts": texts,
            "meta": sc.usage.embed_meta(),
            "response_type": "embeddings_by_type",
        }
        ex.send_json(sc.status, obj, sc.headers)
