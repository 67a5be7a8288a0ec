"""The "floor": one hand-made span per call, with the attributes our instrumentor sets.

A thin wrapper around each benchmarked SDK call, written the shortest obvious
way with the public OpenTelemetry API: start a CLIENT span with the request
attributes, make it current while the SDK sends the request, read usage from
the response (or from the chunks of a stream), set the response attributes,
end the span. No error handling beyond ending the span, no proxies, no
per-client caching: the least any instrumentation recording one span with
usage could do. Our per-call overhead is compared against this one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode


def _start(tracer: trace.Tracer, name: str, attributes: dict[str, Any]) -> tuple[Any, object]:
    span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
    token = context.attach(trace.set_span_in_context(span))
    return span, token


def _fail(span: Any, token: object, exc: BaseException) -> None:
    context.detach(token)
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR))
    span.end()


def _request_attributes(
    operation: str, provider: str, kwargs: dict[str, Any], host: str, max_tokens_key: str
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": kwargs["model"],
        "server.address": host,
        "server.port": 443,
    }
    if max_tokens_key in kwargs:
        attributes["gen_ai.request.max_tokens"] = kwargs[max_tokens_key]
    if "temperature" in kwargs:
        attributes["gen_ai.request.temperature"] = kwargs["temperature"]
    if "stop_sequences" in kwargs:
        attributes["gen_ai.request.stop_sequences"] = tuple(kwargs["stop_sequences"])
    return attributes


def _openai_usage_attributes(usage: Any) -> dict[str, Any]:
    attributes = {
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
    }
    details = usage.prompt_tokens_details
    if details is not None and details.cached_tokens is not None:
        attributes["gen_ai.usage.cache_read.input_tokens"] = details.cached_tokens
    details = usage.completion_tokens_details
    if details is not None and details.reasoning_tokens is not None:
        attributes["gen_ai.usage.reasoning.output_tokens"] = details.reasoning_tokens
    return attributes


def openai_chat(tracer: trace.Tracer, client: Any, **kwargs: Any) -> Any:
    attributes = _request_attributes("chat", "openai", kwargs, "api.openai.com", "max_tokens")
    streaming = kwargs.get("stream") is True
    if streaming:
        attributes["gen_ai.request.stream"] = True
    span, token = _start(tracer, "chat " + kwargs["model"], attributes)
    start = time.perf_counter_ns()
    try:
        result = client.chat.completions.create(**kwargs)
    except BaseException as exc:
        _fail(span, token, exc)
        raise
    context.detach(token)
    if streaming:
        return _openai_stream(result, span, start)
    response = {
        "gen_ai.response.model": result.model,
        "gen_ai.response.id": result.id,
        "gen_ai.response.finish_reasons": tuple(c.finish_reason for c in result.choices),
    }
    if result.usage is not None:
        response.update(_openai_usage_attributes(result.usage))
    span.set_attributes(response)
    span.end()
    return result


def _openai_stream(stream: Any, span: Any, start: int) -> Iterator[Any]:
    first = None
    response: dict[str, Any] = {}
    reasons = []
    for chunk in stream:
        if first is None:
            first = time.perf_counter_ns()
            response["gen_ai.response.model"] = chunk.model
            response["gen_ai.response.id"] = chunk.id
        for choice in chunk.choices:
            if choice.finish_reason is not None:
                reasons.append(choice.finish_reason)
        if chunk.usage is not None:
            response.update(_openai_usage_attributes(chunk.usage))
        yield chunk
    if reasons:
        response["gen_ai.response.finish_reasons"] = tuple(reasons)
    if first is not None:
        response["gen_ai.response.time_to_first_chunk"] = (first - start) / 1e9
    span.set_attributes(response)
    span.end()


def anthropic_messages(tracer: trace.Tracer, client: Any, **kwargs: Any) -> Any:
    attributes = _request_attributes("chat", "anthropic", kwargs, "api.anthropic.com", "max_tokens")
    span, token = _start(tracer, "chat " + kwargs["model"], attributes)
    try:
        result = client.messages.create(**kwargs)
    except BaseException as exc:
        _fail(span, token, exc)
        raise
    context.detach(token)
    usage = result.usage
    cache_read = usage.cache_read_input_tokens or 0
    cache_write = usage.cache_creation_input_tokens or 0
    span.set_attributes(
        {
            "gen_ai.response.model": result.model,
            "gen_ai.response.id": result.id,
            "gen_ai.response.finish_reasons": (result.stop_reason,),
            "gen_ai.usage.input_tokens": usage.input_tokens + cache_read + cache_write,
            "gen_ai.usage.output_tokens": usage.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": cache_read,
            "gen_ai.usage.cache_write.input_tokens": cache_write,
        }
    )
    span.end()
    return result


def _gemini_usage_attributes(usage: Any) -> dict[str, Any]:
    attributes = {
        "gen_ai.usage.input_tokens": usage.prompt_token_count,
        "gen_ai.usage.output_tokens": (usage.candidates_token_count or 0)
        + (usage.thoughts_token_count or 0),
    }
    if usage.cached_content_token_count is not None:
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_content_token_count
    if usage.thoughts_token_count is not None:
        attributes["gen_ai.usage.reasoning.output_tokens"] = usage.thoughts_token_count
    return attributes


def _gemini_request_attributes(kwargs: dict[str, Any]) -> dict[str, Any]:
    config = kwargs.get("config") or {}
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "generate_content",
        "gen_ai.provider.name": "gcp.gemini",
        "gen_ai.request.model": kwargs["model"],
        "server.address": "generativelanguage.googleapis.com",
        "server.port": 443,
    }
    if "max_output_tokens" in config:
        attributes["gen_ai.request.max_tokens"] = config["max_output_tokens"]
    if "temperature" in config:
        attributes["gen_ai.request.temperature"] = config["temperature"]
    return attributes


def gemini_generate(tracer: trace.Tracer, client: Any, **kwargs: Any) -> Any:
    attributes = _gemini_request_attributes(kwargs)
    span, token = _start(tracer, "generate_content " + kwargs["model"], attributes)
    try:
        result = client.models.generate_content(**kwargs)
    except BaseException as exc:
        _fail(span, token, exc)
        raise
    context.detach(token)
    usage = result.usage_metadata
    response: dict[str, Any] = {
        "gen_ai.response.model": result.model_version,
        "gen_ai.response.id": result.response_id,
        "gen_ai.response.finish_reasons": tuple(
            str(c.finish_reason.value).lower() for c in result.candidates or ()
        ),
    }
    if usage is not None:
        response.update(_gemini_usage_attributes(usage))
    span.set_attributes(response)
    span.end()
    return result


def gemini_generate_stream(tracer: trace.Tracer, client: Any, **kwargs: Any) -> Iterator[Any]:
    """The SDK sends a stream's request when it is first iterated: the span starts then."""
    attributes = _gemini_request_attributes(kwargs)
    attributes["gen_ai.request.stream"] = True
    span, token = _start(tracer, "generate_content " + kwargs["model"], attributes)
    start = time.perf_counter_ns()
    stream = client.models.generate_content_stream(**kwargs)
    try:
        first = next(stream)
    except BaseException as exc:
        _fail(span, token, exc)
        raise
    context.detach(token)
    first_ns = time.perf_counter_ns()
    response: dict[str, Any] = {
        "gen_ai.response.model": first.model_version,
        "gen_ai.response.id": first.response_id,
    }
    reasons = []
    usage = None
    chunk = first
    while True:
        for candidate in chunk.candidates or ():
            if candidate.finish_reason is not None:
                reasons.append(str(candidate.finish_reason.value))
        usage = chunk.usage_metadata or usage
        yield chunk
        try:
            chunk = next(stream)
        except StopIteration:
            break
    if usage is not None:
        response.update(_gemini_usage_attributes(usage))
    if reasons:
        response["gen_ai.response.finish_reasons"] = tuple(reasons)
    response["gen_ai.response.time_to_first_chunk"] = (first_ns - start) / 1e9
    span.set_attributes(response)
    span.end()
