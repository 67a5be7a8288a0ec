"""Anthropic SDK: ``messages.create`` / ``parse`` / ``stream``, also under ``beta.messages``.

``messages.stream()`` returns a manager that sends its request only when it is
entered, so the span starts there (``Strategy.DEFERRED_REQUEST``), and our
stream wrapper becomes the manager's raw event stream. The SDK's ``MessageStream``
reads every server-sent event from that raw stream, so iterating it,
``text_stream``, ``get_final_message()``, ``get_final_text()`` and
``until_done()`` all feed the span, and its ``close()`` ends it.

Usage: Anthropic's ``input_tokens`` leaves out cached tokens, so the span's
input is ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``;
``output_tokens`` already includes thinking. In a stream, ``message_start``
carries the input and cache fields and ``message_delta`` the cumulative output
(newer API versions repeat the input fields there): the last value of each
field wins, nothing is summed across events.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, ClassVar

from .. import semconv as sc
from ._common import (
    ServerCache,
    add_counts,
    client_server,
    common_request_attributes,
    token_count,
)
from .base import MethodTarget, ProviderHooks, RequestInfo, Strategy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..invocation import Invocation
    from ..telemetry import Telemetry


_MESSAGES = "anthropic.resources.messages.messages"
_BETA_MESSAGES = "anthropic.resources.beta.messages.messages"
# The Bedrock and Vertex clients' beta resources copy the first-party methods
# when ``anthropic`` is imported, so they are wrapped in their own right.
# (Their non-beta ``messages`` is the first-party class.)
_PLATFORM_BETA_MESSAGES = (
    "anthropic.lib.bedrock._beta_messages",
    "anthropic.lib.vertex._beta_messages",
)

# Clients that reach Claude through a cloud platform, by class name (so that
# naming them never imports their optional dependencies).
_PLATFORM_PROVIDERS = {
    "AnthropicBedrock": "aws.bedrock",
    "AsyncAnthropicBedrock": "aws.bedrock",
    "AnthropicVertex": sc.PROVIDER_VERTEX_AI,
    "AsyncAnthropicVertex": sc.PROVIDER_VERTEX_AI,
}
_BASE_CLIENT = "anthropic._base_client"
_HELPER_STREAMS = "anthropic.lib.streaming._messages"
_BETA_HELPER_STREAMS = "anthropic.lib.streaming._beta_messages"


def _targets() -> tuple[MethodTarget, ...]:
    targets = []
    for module in (_MESSAGES, _BETA_MESSAGES, *_PLATFORM_BETA_MESSAGES):
        for owner, is_async in (("Messages", False), ("AsyncMessages", True)):
            for method in ("create", "parse", "stream"):
                strategy = Strategy.DEFERRED_REQUEST if method == "stream" else Strategy.CALL
                targets.append(
                    MethodTarget(
                        module, f"{owner}.{method}", sc.OP_CHAT, is_async, "messages", strategy
                    )
                )
    # Every request, billed or not (count_tokens, batches...): keep our baggage off it,
    # also from the SDK's own propagation.
    for owner, is_async in (("SyncAPIClient", False), ("AsyncAPIClient", True)):
        targets.append(
            MethodTarget(_BASE_CLIENT, f"{owner}.request", "", is_async, "", Strategy.TRANSPORT)
        )
    # messages.stream()'s helper streams: leaving a loop over one ends the span.
    helper = Strategy.HELPER_LOOP
    for module, prefix in ((_HELPER_STREAMS, ""), (_BETA_HELPER_STREAMS, "Beta")):
        targets.append(
            MethodTarget(module, f"{prefix}MessageStream.__iter__", "", False, "", helper)
        )
        targets.append(
            MethodTarget(module, f"{prefix}AsyncMessageStream.__aiter__", "", True, "", helper)
        )
    return tuple(targets)


def _provider_of(client: Any, _host: str | None, _port: int | None) -> str:
    return _PLATFORM_PROVIDERS.get(type(client).__name__, sc.PROVIDER_ANTHROPIC)


class AnthropicHooks(ProviderHooks):
    name = "anthropic"
    sdk_module = "anthropic"

    _TARGETS: ClassVar[tuple[MethodTarget, ...]] = _targets()

    def __init__(self, telemetry: Telemetry) -> None:
        import anthropic

        self._telemetry = telemetry
        self._servers = ServerCache()
        self._stream_types = (anthropic.Stream, anthropic.AsyncStream)
        raw_types: list[type] = []
        for module_name, class_names in (
            ("anthropic._response", ("APIResponse", "AsyncAPIResponse")),
            ("anthropic._legacy_response", ("LegacyAPIResponse",)),  # older SDKs
        ):
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            raw_types.extend(
                cls for cls in (getattr(module, n, None) for n in class_names) if cls is not None
            )
        self._raw_types = tuple(raw_types)

    def targets(self) -> Sequence[MethodTarget]:
        return self._TARGETS

    # -- request -----------------------------------------------------------

    def _server(self, instance: Any) -> tuple[str, str | None, int | None]:
        return client_server(
            self._servers, getattr(instance, "_client", None), sc.PROVIDER_ANTHROPIC, _provider_of
        )

    def request(
        self,
        target: MethodTarget,
        instance: Any,
        kwargs: dict[str, Any],
        args: tuple[Any, ...] = (),
    ) -> tuple[RequestInfo, dict[str, Any]]:
        provider, address, port = self._server(instance)
        model = kwargs.get("model")
        params = kwargs
        extra_body = kwargs.get("extra_body")
        if isinstance(extra_body, dict) and extra_body:
            # Newer SDKs dropped temperature/top_p/top_k from the signatures;
            # sent through extra_body they still reach the API, which reads them.
            params = {**kwargs, **extra_body}
        attributes = common_request_attributes(params, stop="stop_sequences")
        output_config = params.get("output_config")
        if isinstance(output_config, dict) and isinstance(output_config.get("effort"), str):
            attributes[sc.GEN_AI_REQUEST_REASONING_LEVEL] = output_config["effort"]
        info = RequestInfo(
            provider_name=provider,
            model=model if isinstance(model, str) else None,
            server_address=address,
            server_port=port,
            streaming=target.strategy is Strategy.DEFERRED_REQUEST or kwargs.get("stream") is True,
            attributes=attributes,
        )
        return info, kwargs

    # -- response ----------------------------------------------------------

    def on_response(self, invocation: Invocation, target: MethodTarget, response: Any) -> None:
        invocation.response_id = getattr(response, "id", None) or None
        invocation.response_model = getattr(response, "model", None) or None
        invocation.add_finish_reason(getattr(response, "stop_reason", None))
        usage = getattr(response, "usage", None)
        if usage is not None:
            record_usage(invocation, usage)

    def on_chunk(self, invocation: Invocation, chunk: Any) -> bool:
        event_type = getattr(chunk, "type", None)
        if event_type == "message_start":
            message = getattr(chunk, "message", None)
            invocation.response_id = getattr(message, "id", None) or invocation.response_id
            invocation.response_model = getattr(message, "model", None) or (
                invocation.response_model
            )
            usage = getattr(message, "usage", None)
            if usage is not None:
                record_usage(invocation, usage)
        elif event_type == "message_delta":
            delta = getattr(chunk, "delta", None)
            invocation.add_finish_reason(getattr(delta, "stop_reason", None))
            usage = getattr(chunk, "usage", None)
            if usage is not None:
                record_usage(invocation, usage)
                invocation.usage_complete = True  # message_delta's usage is the final count
        return True

    def is_stream(self, result: Any) -> bool:
        return isinstance(result, self._stream_types)

    def is_raw_response(self, result: Any) -> bool:
        return isinstance(result, self._raw_types)


def record_usage(invocation: Invocation, usage: Any) -> None:
    """Merge an Anthropic usage object (``Usage`` or ``MessageDeltaUsage``) into the invocation.

    A field the object leaves out (or sends as null) keeps its earlier value;
    one it sends replaces it. The invocation keeps the total input, so the
    uncached part is recovered from it before the total is recomputed.
    """
    cache_read = invocation.cache_read_tokens
    cache_write = invocation.cache_write_tokens
    uncached = None
    if invocation.input_tokens is not None:
        uncached = invocation.input_tokens - (cache_read or 0) - (cache_write or 0)

    value = token_count(getattr(usage, "input_tokens", None))
    if value is not None:
        uncached = value
    value = token_count(getattr(usage, "cache_read_input_tokens", None))
    if value is not None:
        cache_read = value
    value = token_count(getattr(usage, "cache_creation_input_tokens", None))
    if value is not None:
        cache_write = value

    invocation.input_tokens = add_counts(uncached, cache_read, cache_write)
    invocation.cache_read_tokens = cache_read
    invocation.cache_write_tokens = cache_write

    output = token_count(getattr(usage, "output_tokens", None))
    if output is not None:
        invocation.output_tokens = output
    details = getattr(usage, "output_tokens_details", None)
    if details is not None:
        thinking = token_count(getattr(details, "thinking_tokens", None))
        if thinking is not None:
            invocation.reasoning_tokens = thinking


__all__ = ["AnthropicHooks", "record_usage"]
