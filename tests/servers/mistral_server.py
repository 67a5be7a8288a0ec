"""Fake Mistral AI API server (chat, FIM, embeddings).

Point the real SDK at it with::

    client = mistralai.client.Mistral(api_key="test-key", server_url=server.url)

Routes: ``POST /v1/chat/completions`` (``chat.complete/stream/parse``),
``POST /v1/fim/completions`` (``fim.complete/stream``), ``POST /v1/embeddings``
(``embeddings.create``).  The SDK marks its streaming calls only by
``"stream": true`` in the body (its internal path is ``/v1/chat/completions#stream``;
the fragment never reaches the server).  Anything else answers 404.

Defaults (``MistralScenario()``), all deterministic:

* model: the requested name echoed (Mistral returns aliases such as
  ``mistral-small-latest`` as given; ``model=`` overrides);
* ids ``cmpl-fake000...N`` / ``embd-fake...`` from a per-server counter;
* ``chunks=5`` pieces ``"t0 t1 t2 t3 t4 "`` (``content=`` overrides: JSON for ``parse``);
* ``finish_reason="stop"``, ``created=1700000000``;
* usage :class:`MistralUsage` ``prompt_tokens=15``, ``completion_tokens=8``,
  ``total_tokens=23`` (embeddings: ``completion_tokens=0``, total = prompt).

Streaming (``stream: true``): a role chunk, ``chunks`` content chunks, a last chunk with
``finish_reason`` **and ``usage``** (Mistral sends usage unasked), then ``data: [DONE]``.

Errors (``server.next_error(status)``) have Mistral's body
``{"object": "error", "message", "type", "param", "code"}``; 422 answers FastAPI's
``{"detail": [...]}`` (``mistralai`` raises ``HTTPValidationError`` for it, ``SDKError``
for every other 4xx/5xx)::

    server.next_error(429)                      # type "rate_limited", code "1300"
    server.next(drop_after=3) / server.next(truncate_after=3) / server.next(chunk_delay=0.05)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import ErrorStep, Exchange, FakeProviderServer, RecordedRequest, ScenarioBase

__all__ = ["MistralFakeServer", "MistralScenario", "MistralUsage"]


@dataclass
class MistralUsage:
    prompt_tokens: int = 15
    completion_tokens: int = 8
    total_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.total_tokens is None:
            self.total_tokens = self.prompt_tokens + self.completion_tokens

    def json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }

    def embeddings_json(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": 0,
            "total_tokens": self.prompt_tokens,
        }


@dataclass
class MistralScenario(ScenarioBase):
    usage: MistralUsage = field(default_factory=MistralUsage)
    finish_reason: str = "stop"
    created: int = 1_700_000_000
    embedding_dim: int = 8


_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request"),
    401: ("unauthorized", None, "Unauthorized"),
    403: ("forbidden", None, "Forbidden"),
    404: ("invalid_request_error", None, "Not found"),
    429: ("rate_limited", "1300", "Requests rate limit exceeded"),
    500: ("internal_server_error", None, "Internal server error"),
    503: ("service_unavailable", None, "Service unavailable"),
}


class MistralFakeServer(FakeProviderServer[MistralScenario]):
    Scenario = MistralScenario

    def client(self, **kwargs: Any) -> Any:
        """A real ``mistralai.client.Mistral`` pointed here (sync and ``*_async`` methods)."""
        from mistralai.client import Mistral

        kwargs.setdefault("api_key", "test-key")
        return Mistral(server_url=self.url, **kwargs)

    async_client = client  # one Mistral object serves both: ``chat.complete_async``...

    def common_headers(self) -> dict[str, str]:
        return {"mistral-correlation-id": self._next_id("corr-")}

    def error_body(self, step: ErrorStep) -> Any:
        if step.status == 422:
            return {
                "detail": [
                    {
                        "type": "missing",
                        "loc": ["body", step.param or "model"],
                        "msg": step.message or "Field required",
                        "input": None,
                    }
                ]
            }
        etype, code, message = _ERRORS.get(
            step.status,
            ("internal_server_error" if step.status >= 500 else "invalid_request_error", None, ""),
        )
        return {
            "object": "error",
            "message": step.message or message or "Error",
            "type": step.type or etype,
            "param": step.param,
            "code": step.code if step.code is not None else code,
        }

    def route(self, req: RecordedRequest) -> Any:
        if req.method != "POST":
            return None
        path = req.path.rstrip("/")
        if path.endswith("/v1/chat/completions") or path.endswith("/v1/fim/completions"):
            return self._completion
        if path.endswith("/v1/embeddings"):
            return self._embeddings
        return None

    def _completion(self, req: RecordedRequest, ex: Exchange, sc: MistralScenario) -> None:
        body = req.json if isinstance(req.json, dict) else {}
        model = self.served_model(sc, body.get("model"))
        rid = sc.response_id or self._next_id("cmpl-fake")
        if not body.get("stream"):
            message = {"role": "assistant", "content": sc.text(), "tool_calls": None}
            obj = {
                "id": rid,
                "object": "chat.completion",
                "created": sc.created,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": sc.finish_reason}],
                "usage": sc.usage.json(),
            }
            ex.send_json(sc.status, obj, sc.headers)
            return

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": sc.created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        events: list[tuple[str | None, Any]] = [(None, chunk({"role": "assistant", "content": ""}))]
        events += [(None, chunk({"content": p})) for p in sc.pieces()]
        last = chunk({"content": ""}, sc.finish_reason)
        last["usage"] = sc.usage.json()
        ex.start_sse(sc.status, sc.headers)
        ex.stream_events(events, sc, terminator=[(None, last), (None, "[DONE]")])

    def _embeddings(self, req: RecordedRequest, ex: Exchange, sc: MistralScenario) -> None:
        body = req.json if isinstance(req.json, dict) else {}
        inputs = body.get("inputs", body.get("input"))
        count = len(inputs) if isinstance(inputs, list) else 1
        obj = {
            "id": sc.response_id or self._next_id("embd-fake"),
            "object": "list",
            "data": [
                {
                    "object": "embedding",
                    "embedding": [((i * 7 + j) % 64) / 64 - 0.5 for j in range(sc.embedding_dim)],
                    "index": i,
                }
                for i in range(count)
            ],
            "model": self.served_model(sc, body.get("model")),
            "usage": sc.usage.embeddings_json(),
        }
        ex.send_json(sc.status, obj, sc.headers)
