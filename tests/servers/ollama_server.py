"""Fake Ollama server (chat, generate, embed; NDJSON streams).

Point the real SDK at it with::

    client = ollama.Client(host=server.url)          # or ollama.AsyncClient(host=...)
    OLLAMA_HOST=http://127.0.0.1:PORT python ...      # the module-level ollama.chat(...)

The module-level functions (``ollama.chat``, ``ollama.generate``, ``ollama.embed``) are
bound methods of one ``Client`` made when ``ollama`` is first imported, so
``OLLAMA_HOST`` must be set before that import; in-process, :meth:`point_module_client`
re-points that client's base URL instead.

Routes: ``POST /api/chat``, ``POST /api/generate``, ``POST /api/embed``; anything else
answers 404.  Ollama streams unless the body says ``"stream": false`` (the SDK always
sends the flag).

Defaults (``OllamaScenario()``), all deterministic:

* model echoed as requested; ``created_at`` fixed; ``chunks=5`` pieces
  ``"t0 t1 t2 t3 t4 "``; ``done_reason="stop"``;
* usage :class:`OllamaUsage` ``prompt_eval_count=26``, ``eval_count=14`` and the
  ``*_duration`` fields (nanoseconds).  ``prompt_eval_count=None`` leaves the field out,
  as Ollama does when the whole prompt came from its cache.

Streaming (``application/x-ndjson``): one JSON object per line, ``done: false`` with a
piece of ``message.content`` (chat) or ``response`` (generate), then a final
``done: true`` object with ``done_reason``, the counts and durations (generate: also
``context``).  Embed answers ``embeddings`` and ``prompt_eval_count`` (no ``eval_count``).

Errors: ``server.next_error(status)`` answers ``{"error": "..."}``; the SDK raises
``ollama.ResponseError`` with ``.status_code`` and ``.error``.
``server.next(error_after=2)`` sends an ``{"error": ...}`` line after 2 lines (the SDK
raises ``ResponseError`` mid-stream); ``drop_after`` / ``truncate_after`` /
``chunk_delay`` count lines.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .base import ErrorStep, Exchange, FakeProviderServer, RecordedRequest, ScenarioBase

__all__ = ["OllamaFakeServer", "OllamaScenario", "OllamaUsage"]

NDJSON = "application/x-ndjson"


@dataclass
class OllamaUsage:
    prompt_eval_count: int | None = 26
    eval_count: int = 14
    total_duration: int = 5_043_500_667
    load_duration: int = 5_025_959
    prompt_eval_duration: int = 325_953_000
    eval_duration: int = 4_709_213_000

    def json(self, *, embed: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "total_duration": self.total_duration,
            "load_duration": self.load_duration,
        }
        if self.prompt_eval_count is not None:
            out["prompt_eval_count"] = self.prompt_eval_count
        if embed:
            return out
        out["prompt_eval_duration"] = self.prompt_eval_duration
        out["eval_count"] = self.eval_count
        out["eval_duration"] = self.eval_duration
        return out


@dataclass
class OllamaScenario(ScenarioBase):
    usage: OllamaUsage = field(default_factory=OllamaUsage)
    done_reason: str = "stop"
    created_at: str = "2025-01-01T00:00:00.000000Z"
    error_after: int | None = None
    error_message: str = "an error was encountered while running the model: unexpected EOF"
    embedding_dim: int = 8


_ERRORS = {
    400: "invalid request",
    401: "unauthorized",
    404: 'model "missing" not found, try pulling it first',
    429: "too many requests",
    500: "an error was encountered while running the model",
    503: "server busy, please try again.  maximum pending requests exceeded",
}


class OllamaFakeServer(FakeProviderServer[OllamaScenario]):
    Scenario = OllamaScenario

    def client(self, **kwargs: Any) -> Any:
        """A real ``ollama.Client(host=server.url)``."""
        import ollama

        return ollama.Client(host=self.url, **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        """A real ``ollama.AsyncClient(host=server.url)``."""
        import ollama

        return ollama.AsyncClient(host=self.url, **kwargs)

    @contextlib.contextmanager
    def point_module_client(self) -> Iterator[Any]:
        """Point ``ollama.chat`` & co. (the import-time default client) here, then back."""
        import ollama

        http = ollama.chat.__self__._client  # the httpx.Client of the module's Client
        before = http.base_url
        http.base_url = self.url
        try:
            yield ollama
        finally:
            http.base_url = before

    def error_body(self, step: ErrorStep) -> Any:
        return {"error": step.message or _ERRORS.get(step.status, "error")}

    def route(self, req: RecordedRequest) -> Any:
        if req.method != "POST":
            return None
        return {
            "/api/chat": self._chat,
            "/api/generate": self._generate,
            "/api/embed": self._embed,
        }.get(req.path.rstrip("/"))

    def _answer(
        self,
        ex: Exchange,
        sc: OllamaScenario,
        body: dict[str, Any],
        piece: Any,
        final: dict[str, Any],
    ) -> None:
        head = {"model": self.served_model(sc, body.get("model")), "created_at": sc.created_at}
        last = {**head, **piece(""), "done": True, "done_reason": sc.done_reason}
        last.update(sc.usage.json())
        last.update(final)
        if body.get("stream", True) is False:
            last.update(piece(sc.text()))
            ex.send_json(sc.status, last, sc.headers)
            return
        lines = [{**head, **piece(p), "done": False} for p in sc.pieces()]
        if sc.error_after is not None:
            lines = [*lines[: sc.error_after], {"error": sc.error_message}]
        else:
            lines.append(last)
        ex.start_stream(sc.status, NDJSON, sc.headers)
        ex.stream_frames((json.dumps(obj).encode() + b"\n" for obj in lines), sc)

    def _chat(self, req: RecordedRequest, ex: Exchange, sc: OllamaScenario) -> None:
        body = req.json if isinstance(req.json, dict) else {}

        def piece(text: str) -> dict[str, Any]:
            return {"message": {"role": "assistant", "content": text}}

        self._answer(ex, sc, body, piece, {})

    def _generate(self, req: RecordedRequest, ex: Exchange, sc: OllamaScenario) -> None:
        body = req.json if isinstance(req.json, dict) else {}

        def piece(text: str) -> dict[str, Any]:
            return {"response": text}

        self._answer(ex, sc, body, piece, {"context": [1, 2, 3]})

    def _embed(self, req: RecordedRequest, ex: Exchange, sc: OllamaScenario) -> None:
        body = req.json if isinstance(req.json, dict) else {}
        inp = body.get("input")
        count = len(inp) if isinstance(inp, list) else 1
        obj = {
            "model": self.served_model(sc, body.get("model")),
            "embeddings": [
                [((i * 7 + j) % 64) / 64 - 0.5 for j in range(sc.embedding_dim)]
                for i in range(count)
            ],
            **sc.usage.json(embed=True),
        }
        ex.send_json(sc.status, obj, sc.headers)
