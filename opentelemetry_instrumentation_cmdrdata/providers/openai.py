"""OpenAI SDK: chat completions, Responses, legacy completions, embeddings.

``chat.completions.stream`` and ``responses.stream`` get no span of their own
(``Strategy.STREAM_MANAGER``): the SDK implements them by calling
``create(stream=True)`` when the stream manager is entered, so that call carries
the span (it starts when the request is made) and the manager's close reaches it
through the response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from .. import pricing
from .. import semconv as sc
from ._common import (
    ServerCache,
    client_server,
    common_request_attributes,
    token_count,
)
from .base import MethodTarget, ProviderHooks, RequestInfo, Strategy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..invocation import Invocation
    from ..telemetry import Telemetry

_CHAT = "openai.resources.chat.completions.completions"
_RESPONSES = "openai.resources.responses.responses"
_COMPLETIONS = "openai.resources.completions"
_EMBEDDINGS = "openai.resources.embeddings"
_BASE_CLIENT = "openai._base_client"
_MANAGER = Strategy.STREAM_MANAGER
_CHAT_HELPER = "openai.lib.streaming.chat._completions"
_RESPONSES_HELPER = "openai.lib.streaming.responses._responses"
_LOOP = Strategy.HELPER_LOOP

# OpenAI-compatible services reached through the openai SDK, named by host.
_HOST_DOMAINS: tuple[tuple[str, str], ...] = (
    ("openai.azure.com", "azure.ai.openai"),
    ("api.groq.com", "groq"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.deepseek.com", "deepseek"),
    ("api.x.ai", "x_ai"),
    ("api.together.xyz", "together_ai"),
    ("openrouter.ai", "openrouter"),
)
_OLLAMA_PORT = 11434
# Services whose usage.cost is what they charged, in USD.
_REPORTS_COST = frozenset(("openrouter",))


def provider_for_host(host: str | None, port: int | None) -> str:
    """The semconv provider name of an OpenAI-compatible endpoint."""
    host = (host or "").lower().rstrip(".")
    for suffix, name in _HOST_DOMAINS:
        if host == suffix.lstrip(".") or host.endswith(
            suffix if suffix[0] == "." else "." + suffix
        ):
            return name
    if port == _OLLAMA_PORT:
        return "ollama"
    return sc.PROVIDER_OPENAI


class OpenAIHooks(ProviderHooks):
    name = "openai"
    sdk_module = "openai"

    _TARGETS: ClassVar[tuple[MethodTarget, ...]] = (
        MethodTarget(_CHAT, "Completions.create", sc.OP_CHAT, False, "chat"),
        MethodTarget(_CHAT, "Completions.parse", sc.OP_CHAT, False, "chat"),
        MethodTarget(_CHAT, "AsyncCompletions.create", sc.OP_CHAT, True, "chat"),
        MethodTarget(_CHAT, "AsyncCompletions.parse", sc.OP_CHAT, True, "chat"),
        MethodTarget(_RESPONSES, "Responses.create", sc.OP_CHAT, False, "responses"),
        MethodTarget(_RESPONSES, "Responses.parse", sc.OP_CHAT, False, "responses"),
        MethodTarget(_RESPONSES, "AsyncResponses.create", sc.OP_CHAT, True, "responses"),
        MethodTarget(_RESPONSES, "AsyncResponses.parse", sc.OP_CHAT, True, "responses"),
        MethodTarget(_COMPLETIONS, "Completions.create", sc.OP_TEXT_COMPLETION, False, "text"),
        MethodTarget(_COMPLETIONS, "AsyncCompletions.create", sc.OP_TEXT_COMPLETION, True, "text"),
        MethodTarget(_EMBEDDINGS, "Embeddings.create", sc.OP_EMBEDDINGS, False, "embeddings"),
        MethodTarget(_EMBEDDINGS, "AsyncEmbeddings.create", sc.OP_EMBEDDINGS, True, "embeddings"),
        MethodTarget(_CHAT, "Completions.stream", sc.OP_CHAT, False, "chat", _MANAGER),
        MethodTarget(_CHAT, "AsyncCompletions.stream", sc.OP_CHAT, True, "chat", _MANAGER),
        MethodTarget(_RESPONSES, "Responses.stream", sc.OP_CHAT, False, "responses", _MANAGER),
        MethodTarget(_RESPONSES, "AsyncResponses.stream", sc.OP_CHAT, True, "responses", _MANAGER),
        # Every request, billed or not (models.list, files...): keep our baggage off it.
        MethodTarget(_BASE_CLIENT, "SyncAPIClient.request", "", False, "", Strategy.TRANSPORT),
        MethodTarget(_BASE_CLIENT, "AsyncAPIClient.request", "", True, "", Strategy.TRANSPORT),
        # The .stream() helpers' streams: leaving a loop over one ends the span.
        MethodTarget(_CHAT_HELPER, "ChatCompletionStream.__iter__", "", False, "", _LOOP),
        MethodTarget(_CHAT_HELPER, "AsyncChatCompletionStream.__aiter__", "", True, "", _LOOP),
        MethodTarget(_RESPONSES_HELPER, "ResponseStream.__iter__", "", False, "", _LOOP),
        MethodTarget(_RESPONSES_HELPER, "AsyncResponseStream.__aiter__", "", True, "", _LOOP),
    )

    def __init__(self, telemetry: Telemetry) -> None:
        import openai
        from openai import _legacy_response, _response

        self._telemetry = telemetry
        self._servers = ServerCache()
        self._stream_types = (openai.Stream, openai.AsyncStream)
        self._raw_types = (
            _legacy_response.LegacyAPIResponse,
            _response.APIResponse,
            _response.AsyncAPIResponse,
        )
        self._azure_types = tuple(
            t
            for t in (
                getattr(openai, "AzureOpenAI", None),
                getattr(openai, "AsyncAzureOpenAI", None),
            )
            if t
        )

    def targets(self) -> Sequence[MethodTarget]:
        return self._TARGETS

    # -- request -----------------------------------------------------------

    def _server(self, instance: Any) -> tuple[str, str | None, int | None]:
        return client_server(
            self._servers, getattr(instance, "_client", None), sc.PROVIDER_OPENAI, self._provider
        )

    def _provider(self, client: Any, host: str | None, port: int | None) -> str:
        if self._azure_types and isinstance(client, self._azure_types):
            return "azure.ai.openai"
        return provider_for_host(host, port)

    def request(
        self,
        target: MethodTarget,
        instance: Any,
        kwargs: dict[str, Any],
        args: tuple[Any, ...] = (),
    ) -> tuple[RequestInfo, dict[str, Any]]:
        provider, address, port = self._server(instance)
        model = kwargs.get("model")
        streaming = kwargs.get("stream") is True
        api = target.api
        if api == "embeddings":
            attributes: dict[str, Any] = {}
            encoding = kwargs.get("encoding_format")
            if isinstance(encoding, str):
                attributes[sc.GEN_AI_REQUEST_ENCODING_FORMATS] = (encoding,)
        elif api == "responses":
            attributes = common_request_attributes(kwargs, max_tokens=("max_output_tokens",))
            reasoning = kwargs.get("reasoning")
            if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
                attributes[sc.GEN_AI_REQUEST_REASONING_LEVEL] = reasoning["effort"]
        else:
            attributes = common_request_attributes(
                kwargs, max_tokens=("max_completion_tokens", "max_tokens")
            )
            n = kwargs.get("n")
            if type(n) is int and n != 1:
                attributes[sc.GEN_AI_REQUEST_CHOICE_COUNT] = n
            effort = kwargs.get("reasoning_effort")
            if isinstance(effort, str):
                attributes[sc.GEN_AI_REQUEST_REASONING_LEVEL] = effort
        info = RequestInfo(
            provider_name=provider,
            model=model if isinstance(model, str) else None,
            server_address=address,
            server_port=port,
            streaming=streaming,
            attributes=attributes,
        )
        if streaming and api in ("chat", "text") and self._telemetry.inject_stream_usage:
            kwargs = self._ask_for_stream_usage(kwargs, info)
        return info, kwargs

    @staticmethod
    def _ask_for_stream_usage(kwargs: dict[str, Any], info: RequestInfo) -> dict[str, Any]:
        """Ask for the usage chunk if the caller did not; hide it from them then."""
        options = kwargs.get("stream_options")
        if isinstance(options, dict):
            if options.get("include_usage") is True:
                return kwargs
            new_options = {**options, "include_usage": True}
        elif options is None or type(options).__name__ in ("Omit", "NotGiven"):
            new_options = {"include_usage": True}
        else:
            return kwargs  # something we do not understand: leave it alone
        info.hide_usage_chunk = True
        return {**kwargs, "stream_options": new_options}

    # -- response ----------------------------------------------------------

    def on_response(self, invocation: Invocation, target: MethodTarget, response: Any) -> None:
        api = target.api
        if api == "responses":
            _record_response_object(invocation, response)
            return
        invocation.response_id = getattr(response, "id", None) or None
        invocation.response_model = getattr(response, "model", None) or None
        usage = getattr(response, "usage", None)
        if api == "embeddings":
            if usage is not None:
                invocation.input_tokens = token_count(getattr(usage, "prompt_tokens", None))
            invocation.response_id = None
            return
        choices = getattr(response, "choices", None)
        if isinstance(choices, (list, tuple)):
            for choice in choices:
                invocation.add_finish_reason(getattr(choice, "finish_reason", None))
        if usage is not None:
            _record_usage(invocation, usage, _COMPLETION_USAGE)

    def on_chunk(self, invocation: Invocation, chunk: Any) -> bool:
        # Responses-API events have a ``type`` field, completion chunks do not. Read
        # the field dict: a missing attribute on a pydantic model costs an exception.
        fields = getattr(chunk, "__dict__", None) or {}
        event_type = fields.get("type")
        if isinstance(event_type, str):
            _record_response_event(invocation, event_type, chunk)
            return True
        if invocation.response_id is None:
            invocation.response_id = fields.get("id") or None
            invocation.response_model = fields.get("model") or None
        choices = fields.get("choices")
        finishing = False
        if choices and isinstance(choices, list):
            for choice in choices:
                reason = getattr(choice, "finish_reason", None)
                if reason is not None:
                    invocation.add_finish_reason(reason)
                    finishing = True
        usage = fields.get("usage")
        if usage is not None:
            _record_usage(invocation, usage, _COMPLETION_USAGE)
            # The final usage: OpenAI's usage-only chunk, or (some compatible servers)
            # the finishing chunk; usage on other chunks is a running count.
            if not choices or finishing:
                invocation.usage_complete = True
            if not choices and invocation.hide_usage_chunk:
                return False
        return True

    def is_stream(self, result: Any) -> bool:
        return isinstance(result, self._stream_types)

    def is_raw_response(self, result: Any) -> bool:
        return isinstance(result, self._raw_types)


def _record_usage(invocation: Invocation, usage: Any, names: tuple[str, ...]) -> None:
    """Copy one usage object's counts; ``names`` says where each count sits in it."""
    input_name, output_name, input_details_name, output_details_name = names
    invocation.input_tokens = token_count(getattr(usage, input_name, None))
    invocation.output_tokens = token_count(getattr(usage, output_name, None))
    input_details = getattr(usage, input_details_name, None)
    if input_details is not None:
        invocation.cache_read_tokens = token_count(getattr(input_details, "cached_tokens", None))
        invocation.cache_write_tokens = token_count(
            getattr(input_details, "cache_write_tokens", None)
        )
    output_details = getattr(usage, output_details_name, None)
    if output_details is not None:
        invocation.reasoning_tokens = token_count(getattr(output_details, "reasoning_tokens", None))
    extra = getattr(usage, "__pydantic_extra__", None)  # fields the SDK does not declare
    if extra and invocation.metric_attributes.get(sc.GEN_AI_PROVIDER_NAME) in _REPORTS_COST:
        invocation.reported_cost = pricing.reported_cost(pricing.PROVIDER, extra.get("cost"))


# Chat and legacy completions: prompt_tokens already include cached tokens.
_COMPLETION_USAGE = (
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
)
# Responses API: input_tokens already include cached tokens.
_RESPONSE_USAGE = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")


def _record_response_object(invocation: Invocation, response: Any) -> None:
    """Responses API: a ``Response`` object (plain call, or the final stream event)."""
    invocation.response_id = getattr(response, "id", None) or invocation.response_id
    invocation.response_model = getattr(response, "model", None) or invocation.response_model
    status = getattr(response, "status", None)
    if status is not None and invocation.finish_reasons is None:
        details = getattr(response, "incomplete_details", None)
        reason = getattr(details, "reason", None) if details is not None else None
        invocation.add_finish_reason(reason or status)
    usage = getattr(response, "usage", None)
    if usage is not None:
        _record_usage(invocation, usage, _RESPONSE_USAGE)


_FINAL_RESPONSE_EVENTS = frozenset(("response.completed", "response.incomplete", "response.failed"))
# Final events of a response that ran to its end (``incomplete``: stopped by a token
# limit), so their usage is the call's whole usage; ``failed`` is a failed call.
_COMPLETE_USAGE_EVENTS = frozenset(("response.completed", "response.incomplete"))


def _record_response_event(invocation: Invocation, event_type: str, event: Any) -> None:
    if event_type in _FINAL_RESPONSE_EVENTS:
        response = getattr(event, "response", None)
        if response is not None:
            _record_response_object(invocation, response)
            if event_type in _COMPLETE_USAGE_EVENTS and getattr(response, "usage", None):
                invocation.usage_complete = True
    elif event_type == "response.created" and invocation.response_id is None:
        response = getattr(event, "response", None)
        invocation.response_id = getattr(response, "id", None) or None
        invocation.response_model = getattr(response, "model", None) or None


__all__ = ["OpenAIHooks", "provider_for_host"]
