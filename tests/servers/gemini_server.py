"""Fake Google Gen AI server (Gemini Developer API and Vertex AI paths).

Point the real SDK at it with::

    from google import genai
    from google.genai import types

    client = genai.Client(api_key="test-key",
                          http_options=types.HttpOptions(base_url=server.url))
    # Vertex AI mode (no real credentials needed, see ``vertex_client`` below):
    client = genai.Client(vertexai=True, project="fake-project", location="us-central1",
                          credentials=google.oauth2.credentials.Credentials(token="fake"),
                          http_options=types.HttpOptions(base_url=server.url))

Routes (POST; the model is the path segment after ``models/`` up to ``:``):

* ``/{v}/models/{m}:generateContent`` and ``:streamGenerateContent?alt=sse``
  (google-genai 3.6 defaults to ``v1`` on the Developer API; ``v1beta`` is
  served identically -- the version segment is not checked)
* ``/{v}/models/{m}:batchEmbedContents`` (what ``models.embed_content`` uses
  on the Developer API, for one or many contents) and ``:embedContent``
* ``/{v}/models/{m}:countTokens``
* Vertex AI: ``/v1beta1/projects/{p}/locations/{l}/publishers/google/models/{m}:...``
  (and the express-mode ``/v1beta1/publishers/google/models/{m}:...``) for the
  same methods plus ``:predict`` (non-Gemini embedding models on Vertex).

Defaults (``GeminiScenario()``), all deterministic:

* ``modelVersion``: requested model through ``model_map`` (empty: echoed);
* ``responseId``: ``fakeResp000...N`` from a per-server counter;
* ``chunks=5`` stream chunks with text ``"t0 t1 t2 t3 t4 "`` (``content=`` overrides);
* ``finish_reason="STOP"``;
* usage :class:`GeminiUsage`: ``promptTokenCount=19``, ``candidatesTokenCount=11``,
  ``totalTokenCount=30`` (prompt + candidates + thoughts + toolUsePrompt unless
  given); ``cachedContentTokenCount`` / ``thoughtsTokenCount`` /
  ``toolUsePromptTokenCount`` default to ``None`` and are then OMITTED from the
  JSON, as the real API omits zero counts.  Embeddings report
  ``usageMetadata.promptTokenCount = usage.prompt_token_count`` (set
  ``embed_usage=False`` to omit it).

Streams are ``data: {json}\\r\\n\\r\\n`` per chunk; every chunk carries the
CUMULATIVE ``usageMetadata`` (candidates count grows to the final value, the
last chunk has the exact usage and the ``finishReason``).

Knobs (see also ``tests/servers/base.py``)::

    server.next(usage=GeminiUsage(prompt_token_count=100, candidates_token_count=50,
                                  cached_content_token_count=40, thoughts_token_count=7))
    server.next(chunks=50, finish_reason="MAX_TOKENS", model="gemini-2.5-flash-001")
    server.next_error(429)          # google.genai.errors.ClientError, RESOURCE_EXHAUSTED
    server.next_error(503)          # google.genai.errors.ServerError, UNAVAILABLE
    server.next(error_after=2)      # ``data: {"error": ...}`` chunk after 2 chunks
    server.next(drop_after=2) / server.next(truncate_after=2) / server.next(chunk_delay=0.05)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import ErrorStep, Exchange, FakeProviderServer, RecordedRequest, ScenarioBase

__all__ = ["GeminiFakeServer", "GeminiScenario", "GeminiUsage"]


@dataclass
class GeminiUsage:
    prompt_token_count: int = 19
    candidates_token_count: int = 11
    total_token_count: int | None = None
    cached_content_token_count: int | None = None
    thoughts_token_count: int | None = None
    tool_use_prompt_token_count: int | None = None

    def __post_init__(self) -> None:
        if self.total_token_count is None:
            self.total_token_count = (
                self.prompt_token_count
                + self.candidates_token_count
                + (self.thoughts_token_count or 0)
                + (self.tool_use_prompt_token_count or 0)
            )

    def to_json(self, candidates: int | None = None, vertex: bool = False) -> dict[str, Any]:
        cand = self.candidates_token_count if candidates is None else candidates
        total = self.total_token_count
        if candidates is not None:
            assert total is not None
            total = total - self.candidates_token_count + cand
        out: dict[str, Any] = {
            "promptTokenCount": self.prompt_token_count,
            "candidatesTokenCount": cand,
            "totalTokenCount": total,
        }
        if self.cached_content_token_count is not None:
            out["cachedContentTokenCount"] = self.cached_content_token_count
        if self.tool_use_prompt_token_count is not None:
            out["toolUsePromptTokenCount"] = self.tool_use_prompt_token_count
        if self.thoughts_token_count is not None:
            out["thoughtsTokenCount"] = self.thoughts_token_count
        out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.prompt_token_count}]
        if self.cached_content_token_count:
            out["cacheTokensDetails"] = [
                {"modality": "TEXT", "tokenCount": self.cached_content_token_count}
            ]
        if vertex:
            out["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": cand}]
            out["trafficType"] = "ON_DEMAND"
        return out


@dataclass
class GeminiScenario(ScenarioBase):
    usage: GeminiUsage = field(default_factory=GeminiUsage)
    finish_reason: str = "STOP"
    create_time: str = "2025-01-01T00:00:00.000000Z"
    #: send a ``data: {"error": ...}`` chunk after this many chunks
    error_after: int | None = None
    error_code: int = 500
    error_status: str = "INTERNAL"
    error_message: str = "An internal error has occurred."
    embedding_dim: int = 8
    embed_usage: bool = True


_STATUS = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline exceeded."),
}


def _embedding_vector(index: int, dim: int) -> list[float]:
    return [((index * 5 + j) % 32) / 32 - 0.25 for j in range(dim)]


class GeminiFakeServer(FakeProviderServer[GeminiScenario]):
    Scenario = GeminiScenario

    def client(self, **kwargs: Any) -> Any:
        """A real Gemini Developer API ``genai.Client`` pointed at this server.

        Use ``client.aio`` for the async API.  Keep a reference to the client
        while using it: ``server.client().models.generate_content(...)`` fails
        because google-genai closes its HTTP client when the ``Client`` object is
        garbage collected.
        """
        from google import genai

        kwargs.setdefault("api_key", "test-key")
        return genai.Client(http_options=self.http_options(), **kwargs)

    def http_options(self) -> Any:
        """``HttpOptions`` pointing here, async calls kept on the httpx backend.

        With ``aiohttp`` importable (aiobotocore brings it) google-genai sends async
        calls through aiohttp whatever ``GOOGLE_GENAI_HTTP_CLIENT`` says; an explicit
        async transport of the selected backend (``httpx2`` unless that variable says
        ``httpx``) keeps them on the same HTTP stack as the sync calls.
        """
        import importlib
        import importlib.util

        from google.genai import _api_client, types

        options = types.HttpOptions(base_url=self.url)
        if importlib.util.find_spec("aiohttp") is not None:
            backend = importlib.import_module(_api_client._get_http_client_backend())
            options.async_client_args = {"transport": backend.AsyncHTTPTransport()}
        return options

    def vertex_client(self, *, express: bool = False, **kwargs: Any) -> Any:
        """A real Vertex AI-mode ``genai.Client`` pointed at this server.

        Default: ``project="fake-project"``, ``location="us-central1"`` and
        ``google.oauth2.credentials.Credentials(token="fake-token")`` (a static
        token, never refreshed, sent as ``Authorization: Bearer fake-token``).
        ``express=True``: Vertex express mode with ``api_key="test-key"`` instead
        (paths ``/v1beta1/publishers/google/models/...``).
        """
        from google import genai

        if express:
            kwargs.setdefault("api_key", "test-key")
        else:
            import google.oauth2.credentials

            kwargs.setdefault("project", "fake-project")
            kwargs.setdefault("location", "us-central1")
            kwargs.setdefault(
                "credentials", google.oauth2.credentials.Credentials(token="fake-token")
            )
        return genai.Client(vertexai=True, http_options=self.http_options(), **kwargs)

    def common_headers(self) -> dict[str, str]:
        return {"x-goog-request-id": self._next_id("greq"), "Vary": "Origin"}

    def error_body(self, step: ErrorStep) -> Any:
        status, message = _STATUS.get(
            step.status, ("INTERNAL" if step.status >= 500 else "FAILED_PRECONDITION", "Error")
        )
        return {
            "error": {
                "code": step.status,
                "message": step.message or message,
                "status": step.type or status,
            }
        }

    def _send_error(self, ex: Exchange, step: ErrorStep) -> None:
        # Google APIs do not send retry-after-ms; keep only explicit headers
        step = ErrorStep(**{**step.__dict__, "retry_after_ms": None})
        super()._send_error(ex, step)

    @staticmethod
    def parse_path(path: str) -> tuple[str | None, str | None, bool]:
        """Return ``(model, method, is_vertex)`` for a model-method path."""
        if ":" not in path or "models/" not in path:
            return None, None, False
        prefix, method = path.rsplit(":", 1)
        model = prefix.split("models/", 1)[1]
        vertex = "/publishers/" in prefix or "/projects/" in prefix
        return model, method, vertex

    def route(self, req: RecordedRequest) -> Any:
        if req.method != "POST":
            return None
        _model, method, _ = self.parse_path(req.path)
        return {
            "generateContent": self._generate,
            "streamGenerateContent": self._generate,
            "embedContent": self._embed,
            "batchEmbedContents": self._embed,
            "predict": self._embed,
            "countTokens": self._count_tokens,
        }.get(method or "")

    def _model_version(self, sc: GeminiScenario, requested: str | None) -> str:
        return self.served_model(sc, requested)

    def _count_tokens(self, req: RecordedRequest, ex: Exchange, sc: GeminiScenario) -> None:
        ex.send_json(sc.status, {"totalTokens": sc.usage.prompt_token_count}, sc.headers)

    def _generate(self, req: RecordedRequest, ex: Exchange, sc: GeminiScenario) -> None:
        model, method, vertex = self.parse_path(req.path)
        version = self._model_version(sc, model)
        rid = sc.response_id or self._next_id("fakeResp")

        def response(text: str, finish: str | None, usage: dict[str, Any]) -> dict[str, Any]:
            cand: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}}
            if finish is not None:
                cand["finishReason"] = finish
            cand["index"] = 0
            out: dict[str, Any] = {"candidates": [cand], "usageMetadata": usage}
            out["modelVersion"] = version
            if vertex:
                out["createTime"] = sc.create_time
            out["responseId"] = rid
            return out

        if method == "generateContent":
            ex.send_json(
                sc.status,
                response(sc.text(), sc.finish_reason, sc.usage.to_json(vertex=vertex)),
                sc.headers,
            )
            return

        pieces = sc.pieces()
        n = len(pieces)
        final = sc.usage.candidates_token_count
        events: list[tuple[str | None, Any]] = []
        for i, piece in enumerate(pieces):
            last = i == n - 1
            cumulative = final if last else (final * (i + 1)) // n
            events.append(
                (
                    None,
                    response(
                        piece,
                        sc.finish_reason if last else None,
                        sc.usage.to_json(candidates=cumulative, vertex=vertex),
                    ),
                )
            )
        if sc.error_after is not None:
            events = [
                *events[: sc.error_after],
                (
                    None,
                    {
                        "error": {
                            "code": sc.error_code,
                            "message": sc.error_message,
                            "status": sc.error_status,
                        }
                    },
                ),
            ]
        ex.start_sse(sc.status, sc.headers)
        # the last content chunk doubles as the stream terminator
        terminator = events[-1:] if sc.error_after is None else []
        body = events[:-1] if sc.error_after is None else events
        ex.stream_events(body, sc, terminator=terminator, sep="\r\n")

    def _embed(self, req: RecordedRequest, ex: Exchange, sc: GeminiScenario) -> None:
        _, method, vertex = self.parse_path(req.path)
        body = req.json if isinstance(req.json, dict) else {}
        usage = {"promptTokenCount": sc.usage.prompt_token_count}

        def dim_of(cfg: Any) -> int:
            if isinstance(cfg, dict) and cfg.get("outputDimensionality"):
                return int(cfg["outputDimensionality"])
            return sc.embedding_dim

        out: dict[str, Any]
        if method == "predict":
            instances = body.get("instances") or []
            dim = dim_of(body.get("parameters"))
            per = max(1, sc.usage.prompt_token_count // max(1, len(instances)))
            out = {
                "predictions": [
                    {
                        "embeddings": {
                            "values": _embedding_vector(i, dim),
                            "statistics": {"token_count": per, "truncated": False},
                        }
                    }
                    for i in range(len(instances))
                ],
                "metadata": {"billableCharacterCount": 4 * sc.usage.prompt_token_count},
            }
        elif method == "embedContent":
            dim = dim_of(body.get("embedContentConfig") or body)
            out = {"embedding": {"values": _embedding_vector(0, dim)}}
            if sc.embed_usage:
                out["usageMetadata"] = usage
            if vertex:
                out["truncated"] = False
        else:  # batchEmbedContents
            requests = body.get("requests") or []
            first = requests[0] if requests and isinstance(requests[0], dict) else {}
            dim = dim_of(first.get("embedContentConfig") or first)
            out = {
                "embeddings": [{"values": _embedding_vector(i, dim)} for i in range(len(requests))]
            }
            if sc.embed_usage:
                out["usageMetadata"] = usage
        ex.send_json(sc.status, out, sc.headers)
