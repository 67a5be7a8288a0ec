"""Google Gen AI SDK (``google-genai``): Gemini Developer API and Vertex AI.

Covered: ``models.generate_content``, ``models.generate_content_stream`` and
``models.embed_content``, the same under ``client.aio.models``, and therefore
``client.chats`` sessions, which call those public methods.

- **One span per model request.** A public call can make several requests:
  automatic function calling (a request per tool round, in
  ``generate_content`` itself or in a chat) and automatic continuation (a
  request per ``continuation_token`` hop). Google bills each, while the SDK
  returns only the last response of a function-calling loop. So the span is
  put on the SDK's per-request methods (``Models._generate_content``,
  ``_generate_content_stream`` and the async ones): a plain call, or a chat
  turn, is one span; a call with two tool rounds is two spans, each with its
  request's own usage. The public methods are wrapped too, without a span
  (``Strategy.SCOPE``): they take the per-call ``customer_id=`` /
  ``cmdrdata_metadata=`` / ``track_usage=`` keywords off the call and apply
  them to every request it makes. Your tool functions run between requests,
  outside any span of ours, so LLM calls made inside them are billed as calls
  of their own. Should a
  future SDK drop the per-request methods, the spans go on the public methods
  (one per call) instead.
- **Usage.** input = ``prompt_token_count`` (cached tokens are part of it) plus
  ``tool_use_prompt_token_count`` (tool results fed back to the model, reported
  apart and billed as input; absent unless tools ran); output =
  ``candidates_token_count + thoughts_token_count``; cache read =
  ``cached_content_token_count``; reasoning = ``thoughts_token_count``.
  Streamed chunks carry the running total of their request, so the latest
  ``usage_metadata`` replaces the previous one: never a sum.
- **Finish reasons** are the API's own strings (``"STOP"``, ``"MAX_TOKENS"``),
  one per candidate.
- **Embeddings** report input tokens only when the API does
  (``usage_metadata.prompt_token_count``, or Vertex AI's per-embedding
  ``statistics.token_count``); nothing is estimated.
- **Streams.** The sync stream methods are generator functions: the request
  is sent when the caller starts iterating, not when the method returns
  (``Strategy.LAZY_STREAM``: that first step runs in the span's context, so the
  HTTP request nests under the span and carries no ``cmdrdata.*`` baggage, as
  for every other call).
"""

from __future__ import annotations

import json
import types
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import pydantic

from .. import semconv as sc
from ._common import ServerCache, add_counts, common_request_attributes, token_count
from .base import MethodTarget, ProviderHooks, RequestInfo, Strategy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..invocation import Invocation
    from ..telemetry import Telemetry

_MODELS = "google.genai.models"
_OP = sc.OP_GENERATE_CONTENT
_GENERATORS = (types.GeneratorType, types.AsyncGeneratorType)
# MethodTarget.api tags: the request and response shapes
_GENERATE = "generate"
_STREAM = "stream"
_EMBEDDINGS = "embeddings"
_SCOPE = Strategy.SCOPE
_LAZY = Strategy.LAZY_STREAM

_GEMINI_HOST = "generativelanguage.googleapis.com"

# The config fields read here: (snake_case name, REST camelCase name). A config passed
# as a dict may use either spelling.
_CONFIG_FIELDS: tuple[tuple[str, str], ...] = (
    ("max_output_tokens", "maxOutputTokens"),
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("frequency_penalty", "frequencyPenalty"),
    ("presence_penalty", "presencePenalty"),
    ("seed", "seed"),
    ("stop_sequences", "stopSequences"),
    ("candidate_count", "candidateCount"),
    ("response_mime_type", "responseMimeType"),
    ("thinking_config", "thinkingConfig"),
    ("output_dimensionality", "outputDimensionality"),
    ("http_options", "httpOptions"),
)
_SNAKE_NAMES = tuple(snake for snake, _ in _CONFIG_FIELDS)
_CAMEL_TO_SNAKE = {camel: snake for snake, camel in _CONFIG_FIELDS if camel != snake}

_OUTPUT_TYPES = {
    "application/json": "json",
    "text/plain": "text",
    "text/x.enum": "text",
}


def config_fields(config: Any) -> dict[str, Any]:
    """The fields of a request config (an SDK object or its dict form) that are set.

    Keyed by snake_case name; in a dict, the snake_case spelling wins over the camelCase one.
    """
    if config is None:
        return {}
    if isinstance(config, dict):
        fields: dict[str, Any] = {}
        for key, value in config.items():
            if value is None:
                continue
            if key in _CAMEL_TO_SNAKE:
                fields.setdefault(_CAMEL_TO_SNAKE[key], value)
            else:
                fields[key] = value
        return fields
    # A pydantic config keeps its fields in its __dict__; asking it for a field its class
    # lacks (an older SDK's) would cost a raised AttributeError.
    values = getattr(config, "__dict__", None)
    if isinstance(values, dict):
        return {name: value for name in _SNAKE_NAMES if (value := values.get(name)) is not None}
    return {
        name: value for name in _SNAKE_NAMES if (value := getattr(config, name, None)) is not None
    }


def _field(obj: Any, name: str, camel: str) -> Any:
    """A field of a nested SDK object, or of the dict a caller passed in its place."""
    if isinstance(obj, dict):
        value = obj.get(name)
        return obj.get(camel) if value is None else value
    return getattr(obj, name, None)


def request_model(model: Any) -> str | None:
    """The model as the caller named it, without the resource-name prefix.

    ``models/gemini-2.5-flash`` and Vertex AI's
    ``projects/p/locations/l/publishers/google/models/gemini-2.5-flash`` both
    give ``gemini-2.5-flash``; other names (tuned models, endpoints) are kept.
    """
    if not isinstance(model, str) or not model:
        return None
    if model.startswith("models/"):
        return model[len("models/") :] or None
    if "publishers/" in model and "/models/" in model:
        return model.rsplit("/models/", 1)[1] or None
    return model


def server_of(base_url: Any) -> tuple[str | None, int | None]:
    """Host and port of a base URL (the scheme's default port when none is given)."""
    if not isinstance(base_url, str) or not base_url:
        return None, None
    try:
        parts = urlsplit(base_url)
        host = parts.hostname or None
        port = parts.port
    except ValueError:
        return None, None
    if port is None and host is not None:
        port = 80 if parts.scheme == "http" else 443
    return host, port


def record_usage(invocation: Invocation, usage: Any) -> None:
    """Set the invocation's tokens from one ``usage_metadata`` (replacing, never adding).

    Streams call this on every chunk, so the counts are checked inline (as ``token_count``
    does) and summed only where a second count is there.
    """
    prompt = getattr(usage, "prompt_token_count", None)
    if type(prompt) is not int or prompt < 0:
        prompt = None
    candidates = getattr(usage, "candidates_token_count", None)
    if type(candidates) is not int or candidates < 0:
        candidates = None
    thoughts = getattr(usage, "thoughts_token_count", None)
    if type(thoughts) is not int or thoughts < 0:
        thoughts = None
    cached = getattr(usage, "cached_content_token_count", None)
    tool_use = getattr(usage, "tool_use_prompt_token_count", None)
    invocation.input_tokens = prompt if tool_use is None else add_counts(prompt, tool_use)
    invocation.output_tokens = candidates if thoughts is None else add_counts(candidates, thoughts)
    invocation.cache_read_tokens = cached if type(cached) is int and cached >= 0 else None
    invocation.reasoning_tokens = thoughts


def record_generate_response(invocation: Invocation, response: Any) -> None:
    """A complete ``GenerateContentResponse``."""
    invocation.response_id = getattr(response, "response_id", None) or None
    invocation.response_model = getattr(response, "model_version", None) or None
    for candidate in getattr(response, "candidates", None) or ():
        invocation.add_finish_reason(getattr(candidate, "finish_reason", None))
    usage = getattr(response, "usage_metadata", None)
    if usage is not None:
        record_usage(invocation, usage)
    elif not getattr(response, "candidates", None):
        _record_http_body(invocation, getattr(response, "sdk_http_response", None))


def record_generate_chunk(invocation: Invocation, chunk: Any) -> bool:
    """One streamed ``GenerateContentResponse``: a delta, with the running usage.

    The provider's ``on_chunk`` itself (one call less per chunk): always shown.
    """
    if invocation.response_id is None:
        invocation.response_id = getattr(chunk, "response_id", None) or None
    if invocation.response_model is None:
        invocation.response_model = getattr(chunk, "model_version", None) or None
    candidates = getattr(chunk, "candidates", None)
    if candidates:
        for candidate in candidates:
            reason = getattr(candidate, "finish_reason", None)
            if reason is not None:
                invocation.add_finish_reason(reason)
    usage = getattr(chunk, "usage_metadata", None)
    if usage is not None:
        record_usage(invocation, usage)
        # The running total is the final one once a candidate has finished.
        if invocation.finish_reasons:
            invocation.usage_complete = True
    return True


def record_embed_response(invocation: Invocation, response: Any) -> None:
    """An ``EmbedContentResponse``: input tokens, only when the API reported them."""
    usage = getattr(response, "usage_metadata", None)
    if usage is not None:
        prompt = token_count(getattr(usage, "prompt_token_count", None))
        if prompt is not None:
            invocation.input_tokens = prompt
            return
    # Vertex AI's predict API reports tokens per embedding instead.
    total = None
    for embedding in getattr(response, "embeddings", None) or ():
        statistics = getattr(embedding, "statistics", None)
        count = _whole_number(getattr(statistics, "token_count", None))
        if count is None:
            return  # partial counts would under-report: leave it unset
        total = count if total is None else total + count
    invocation.input_tokens = total


def _whole_number(value: Any) -> int | None:
    """A count the API sends as a float (Vertex AI embedding statistics)."""
    if type(value) is float and value >= 0 and value.is_integer():
        return int(value)
    return token_count(value)


# REST (camelCase) names of the usage fields, for a response the SDK left unparsed.
_REST_USAGE = {
    "prompt_token_count": "promptTokenCount",
    "candidates_token_count": "candidatesTokenCount",
    "thoughts_token_count": "thoughtsTokenCount",
    "cached_content_token_count": "cachedContentTokenCount",
    "tool_use_prompt_token_count": "toolUsePromptTokenCount",
}


class _RestUsage:
    __slots__ = tuple(_REST_USAGE)

    def __init__(self, data: dict[str, Any]) -> None:
        for name, rest_name in _REST_USAGE.items():
            setattr(self, name, data.get(rest_name))


def _record_http_body(invocation: Invocation, http_response: Any) -> None:
    """``config.should_return_http_response``: the SDK returns the body unparsed."""
    body = getattr(http_response, "body", None)
    if not isinstance(body, str) or "usageMetadata" not in body:
        return
    try:
        data = json.loads(body)
    except ValueError:
        return
    if not isinstance(data, dict):
        return
    invocation.response_id = invocation.response_id or _str_or_none(data.get("responseId"))
    invocation.response_model = invocation.response_model or _str_or_none(data.get("modelVersion"))
    for candidate in data.get("candidates") or ():
        if isinstance(candidate, dict):
            invocation.add_finish_reason(_str_or_none(candidate.get("finishReason")))
    usage = data.get("usageMetadata")
    if isinstance(usage, dict):
        record_usage(invocation, _RestUsage(usage))


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def generate_request_attributes(fields: dict[str, Any]) -> dict[str, Any]:
    """``gen_ai.request.*`` from a ``GenerateContentConfig``'s fields (see ``config_fields``)."""
    if not fields:
        return {}
    attributes = common_request_attributes(
        fields, max_tokens=("max_output_tokens",), stop="stop_sequences"
    )
    candidates = fields.get("candidate_count")
    if type(candidates) is int and candidates != 1:
        attributes[sc.GEN_AI_REQUEST_CHOICE_COUNT] = candidates
    mime_type = fields.get("response_mime_type")
    if isinstance(mime_type, str) and mime_type in _OUTPUT_TYPES:
        attributes[sc.GEN_AI_OUTPUT_TYPE] = _OUTPUT_TYPES[mime_type]
    thinking = fields.get("thinking_config")
    if thinking is not None:
        level = _field(thinking, "thinking_level", "thinkingLevel")
        level = getattr(level, "value", level)
        if isinstance(level, str) and level:
            attributes[sc.GEN_AI_REQUEST_REASONING_LEVEL] = level.lower()
    return attributes


def embed_request_attributes(fields: dict[str, Any]) -> dict[str, Any]:
    dimensions = fields.get("output_dimensionality")
    if type(dimensions) is int and dimensions > 0:
        return {sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: dimensions}
    return {}


class GoogleGenAIHooks(ProviderHooks):
    name = "google_genai"
    sdk_module = "google.genai"

    # Public methods: no span of their own; they hand the caller's per-call
    # keywords to the model requests they make.
    _SCOPES: ClassVar[tuple[MethodTarget, ...]] = (
        MethodTarget(_MODELS, "Models.generate_content", _OP, False, _GENERATE, _SCOPE),
        MethodTarget(_MODELS, "Models.generate_content_stream", _OP, False, _STREAM, _SCOPE),
        MethodTarget(_MODELS, "AsyncModels.generate_content", _OP, True, _GENERATE, _SCOPE),
        MethodTarget(_MODELS, "AsyncModels.generate_content_stream", _OP, True, _STREAM, _SCOPE),
    )
    # One model request each: the spans.
    _REQUESTS: ClassVar[tuple[MethodTarget, ...]] = (
        MethodTarget(_MODELS, "Models._generate_content", _OP, False, _GENERATE),
        MethodTarget(_MODELS, "Models._generate_content_stream", _OP, False, _STREAM, _LAZY),
        MethodTarget(_MODELS, "AsyncModels._generate_content", _OP, True, _GENERATE),
        # Sends its request when awaited, then returns the chunks' async generator.
        MethodTarget(_MODELS, "AsyncModels._generate_content_stream", _OP, True, _STREAM),
    )
    # Where the per-request methods are missing (a future SDK): spans on the
    # public methods, whose streams send their request once iterated.
    _PUBLIC: ClassVar[tuple[MethodTarget, ...]] = (
        MethodTarget(_MODELS, "Models.generate_content", _OP, False, _GENERATE),
        MethodTarget(_MODELS, "Models.generate_content_stream", _OP, False, _STREAM, _LAZY),
        MethodTarget(_MODELS, "AsyncModels.generate_content", _OP, True, _GENERATE),
        MethodTarget(_MODELS, "AsyncModels.generate_content_stream", _OP, True, _STREAM, _LAZY),
    )
    _EMBED: ClassVar[tuple[MethodTarget, ...]] = (
        MethodTarget(_MODELS, "Models.embed_content", sc.OP_EMBEDDINGS, False, _EMBEDDINGS),
        MethodTarget(_MODELS, "AsyncModels.embed_content", sc.OP_EMBEDDINGS, True, _EMBEDDINGS),
    )
    # Every request, billed or not (count_tokens, files...): keep our baggage off it.
    _TRANSPORT: ClassVar[tuple[MethodTarget, ...]] = (
        MethodTarget(
            "google.genai._api_client", "BaseApiClient.request", "", False, "", Strategy.TRANSPORT
        ),
        MethodTarget(
            "google.genai._api_client",
            "BaseApiClient.async_request",
            "",
            True,
            "",
            Strategy.TRANSPORT,
        ),
    )

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        self._servers = ServerCache()

    def targets(self) -> Sequence[MethodTarget]:
        try:
            from google.genai import models
        except ImportError:
            return ()
        per_request = all(
            callable(getattr(getattr(models, owner, None), method, None))
            for owner, method in (target.qualname.split(".") for target in self._REQUESTS)
        )
        if per_request:
            return (*self._SCOPES, *self._REQUESTS, *self._EMBED, *self._TRANSPORT)
        return (*self._PUBLIC, *self._EMBED, *self._TRANSPORT)

    # -- request -----------------------------------------------------------

    def _server(self, instance: Any, fields: dict[str, Any]) -> tuple[str, str | None, int | None]:
        api_client = getattr(instance, "_api_client", None)
        provider = (
            sc.PROVIDER_VERTEX_AI if getattr(api_client, "vertexai", False) else sc.PROVIDER_GEMINI
        )
        # A per-call ``config.http_options.base_url`` sends this one request elsewhere.
        http_options = fields.get("http_options")
        if http_options is not None:
            call_url = _field(http_options, "base_url", "baseUrl")
            if isinstance(call_url, str) and call_url:
                return (provider, *server_of(call_url))
        if api_client is None:
            return provider, None, None
        known = self._servers.get(api_client)
        if known is not None:
            return known
        base_url = getattr(getattr(api_client, "_http_options", None), "base_url", None)
        host, port = server_of(base_url)
        if host is None and provider == sc.PROVIDER_GEMINI:
            host, port = _GEMINI_HOST, 443
        value = (provider, host, port)
        self._servers.put(api_client, value)
        return value

    def request(
        self,
        target: MethodTarget,
        instance: Any,
        kwargs: dict[str, Any],
        args: tuple[Any, ...] = (),
    ) -> tuple[RequestInfo, dict[str, Any]]:
        fields = config_fields(kwargs.get("config"))
        provider, address, port = self._server(instance, fields)
        if target.api == _EMBEDDINGS:
            attributes = embed_request_attributes(fields)
        else:
            attributes = generate_request_attributes(fields)
        info = RequestInfo(
            provider_name=provider,
            model=request_model(kwargs.get("model")),
            server_address=address,
            server_port=port,
            streaming=target.api == _STREAM,
            attributes=attributes,
        )
        return info, kwargs

    # -- response ----------------------------------------------------------

    def on_response(self, invocation: Invocation, target: MethodTarget, response: Any) -> None:
        if target.api == _EMBEDDINGS:
            record_embed_response(invocation, response)
        else:
            record_generate_response(invocation, response)

    on_chunk = staticmethod(record_generate_chunk)

    def is_stream(self, result: Any) -> bool:
        # A (sync or async) generator of GenerateContentResponse chunks; the
        # responses themselves are pydantic models, iterable but not iterators
        # (and asking their class for a missing attribute costs an exception).
        if isinstance(result, _GENERATORS):
            return True
        if isinstance(result, pydantic.BaseModel):
            return False
        kind = type(result)
        return hasattr(kind, "__next__") or hasattr(kind, "__anext__")


__all__ = ["GoogleGenAIHooks", "record_usage", "request_model", "server_of"]
