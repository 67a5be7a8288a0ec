"""Anthropic SDK: ``messages.create`` / ``parse`` / ``stream``, also under ``beta.messages``.

``messages.stream()`` returns a manager that sends its request only when it is
entered. So the span starts there: the manager's request (a callable, or an
awaitable for the async manager) is swapped for one that runs through the
generic wrapper, which starts the span, makes the request inside it and hands
back our stream wrapper as the raw event stream. The SDK's ``MessageStream``
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
import inspect
from typing import TYPE_CHECKING, Any, ClassVar

from .. import semconv as sc
from ..invocation import log_internal_error
from ..patching import HELPER_LOOP, TRANSPORT, make_wrapper, take_call_kwargs
from ._common import (
    ServerCache,
    add_counts,
    client_server,
    common_request_attributes,
    token_count,
)
from .base import MethodTarget, ProviderHooks, RequestInfo

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator, Sequence

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

# The name-mangled attribute holding a stream manager's request
# (``MessageStreamManager.__api_request`` and its beta/async siblings).
_REQUEST_ATTRIBUTE_SUFFIX = "__api_request"
_BASE_CLIENT = "anthropic._base_client"
_HELPER_STREAMS = "anthropic.lib.streaming._messages"
_BETA_HELPER_STREAMS = "anthropic.lib.streaming._beta_messages"


def _targets() -> tuple[MethodTarget, ...]:
    targets = []
    for module in (_MESSAGES, _BETA_MESSAGES, *_PLATFORM_BETA_MESSAGES):
        for owner, is_async in (("Messages", False), ("AsyncMessages", True)):
            for method in ("create", "parse", "stream"):
                api = "stream" if method == "stream" else "messages"
                targets.append(MethodTarget(module, f"{owner}.{method}", sc.OP_CHAT, is_async, api))
    # Every request, billed or not (count_tokens, batches...): keep our baggage off it,
    # also from the SDK's own propagation.
    targets.append(MethodTarget(_BASE_CLIENT, "SyncAPIClient.request", "", False, TRANSPORT))
    targets.append(MethodTarget(_BASE_CLIENT, "AsyncAPIClient.request", "", True, TRANSPORT))
    # messages.stream()'s helper streams: leaving a loop over one ends the span.
    for module, prefix in ((_HELPER_STREAMS, ""), (_BETA_HELPER_STREAMS, "Beta")):
        targets.append(
            MethodTarget(module, f"{prefix}MessageStream.__iter__", "", False, HELPER_LOOP)
        )
        targets.append(
            MethodTarget(module, f"{prefix}AsyncMessageStream.__aiter__", "", True, HELPER_LOOP)
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
        self, target: MethodTarget, instance: Any, kwargs: dict[str, Any]
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
            streaming=target.api == "stream" or kwargs.get("stream") is True,
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

    # -- messages.stream(): the span starts on __enter__ ----------------------

    def custom_wrapper(
        self, target: MethodTarget, telemetry: Telemetry
    ) -> Callable[..., Any] | None:
        if target.api != "stream":
            return None
        # The generic wrapper, run when the manager sends its request.
        start_call = make_wrapper(self, target, telemetry)

        def stream_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            # Our per-call kwargs stay in ``kwargs`` for the span started later.
            manager = wrapped(*args, **take_call_kwargs(kwargs)[0])
            try:
                _defer_to_request(manager, start_call, instance, kwargs)
            except Exception as exc:
                log_internal_error(f"wrapping the stream manager of {target.qualname}", exc)
            return manager

        return stream_wrapper


def _defer_to_request(
    manager: Any, start_call: Callable[..., Any], instance: Any, kwargs: dict[str, Any]
) -> None:
    """Make ``manager`` send its request through ``start_call`` when it is entered."""
    attribute = next(
        (name for name in vars(manager) if name.endswith(_REQUEST_ATTRIBUTE_SUFFIX)), None
    )
    if attribute is None:
        # An SDK whose manager we do not know: its calls would go unbilled, so say so once.
        log_internal_error(
            "wrapping a stream manager",
            LookupError(f"{type(manager).__name__} has no request to wrap; not instrumented"),
        )
        return
    request = getattr(manager, attribute)
    if callable(request):
        # Sync manager: a callable that returns the raw event stream.

        def send(*_args: Any, **_kwargs: Any) -> Any:
            return request()

        setattr(manager, attribute, lambda: start_call(send, instance, (), kwargs))
    elif inspect.isawaitable(request):
        setattr(manager, attribute, _DeferredRequest(start_call, request, instance, kwargs))


class _DeferredRequest:
    """The async manager's request: awaited on ``__aenter__``, it starts the span then."""

    __slots__ = ("_instance", "_kwargs", "_request", "_start_call")

    def __init__(
        self,
        start_call: Callable[..., Any],
        request: Awaitable[Any],
        instance: Any,
        kwargs: dict[str, Any],
    ) -> None:
        self._start_call = start_call
        self._request = request
        self._instance = instance
        self._kwargs = kwargs

    def __await__(self) -> Generator[Any, None, Any]:
        request = self._request

        def send(*_args: Any, **_kwargs: Any) -> Awaitable[Any]:
            return request

        return self._start_call(send, self._instance, (), self._kwargs).__await__()


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
