"""Drive every instrumented OpenAI method the way an app would, sync or async.

One table of call shapes serves the whole OpenAI test matrix, so each test
states only what it checks.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import pydantic

MESSAGES = [{"role": "user", "content": "Say hi"}]


class Greeting(pydantic.BaseModel):
    greeting: str


GREETING_JSON = '{"greeting": "hi"}'


@dataclass(frozen=True)
class CallShape:
    """One way of calling the SDK: which resource, which method, which arguments."""

    name: str
    resource: str  # dotted path from the client, e.g. "chat.completions"
    method: str
    kwargs: dict[str, Any]
    operation: str
    streaming: bool = False
    manager: bool = False  # a `.stream()` helper used as a context manager
    embeddings: bool = False
    content: str | None = None
    modes: tuple[str, ...] = ("plain", "raw", "streaming")
    extra: dict[str, Any] = field(default_factory=dict)


SHAPES: list[CallShape] = [
    CallShape(
        "chat", "chat.completions", "create", {"model": "gpt-4o-mini", "messages": MESSAGES}, "chat"
    ),
    CallShape(
        "chat_stream",
        "chat.completions",
        "create",
        {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True},
        "chat",
        streaming=True,
    ),
    CallShape(
        "chat_parse",
        "chat.completions",
        "parse",
        {"model": "gpt-4o-mini", "messages": MESSAGES, "response_format": Greeting},
        "chat",
        content=GREETING_JSON,
    ),
    CallShape(
        "chat_stream_helper",
        "chat.completions",
        "stream",
        {"model": "gpt-4o-mini", "messages": MESSAGES},
        "chat",
        streaming=True,
        manager=True,
        modes=("plain",),
    ),
    CallShape(
        "responses", "responses", "create", {"model": "gpt-4o-mini", "input": "Say hi"}, "chat"
    ),
    CallShape(
        "responses_stream",
        "responses",
        "create",
        {"model": "gpt-4o-mini", "input": "Say hi", "stream": True},
        "chat",
        streaming=True,
    ),
    CallShape(
        "responses_parse",
        "responses",
        "parse",
        {"model": "gpt-4o-mini", "input": "Say hi", "text_format": Greeting},
        "chat",
        content=GREETING_JSON,
        modes=("plain", "raw"),  # the SDK has no with_streaming_response.parse here
    ),
    CallShape(
        "responses_stream_helper",
        "responses",
        "stream",
        {"model": "gpt-4o-mini", "input": "Say hi"},
        "chat",
        streaming=True,
        manager=True,
        modes=("plain",),
    ),
    CallShape(
        "completions",
        "completions",
        "create",
        {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi"},
        "text_completion",
    ),
    CallShape(
        "completions_stream",
        "completions",
        "create",
        {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "stream": True},
        "text_completion",
        streaming=True,
    ),
    CallShape(
        "embeddings",
        "embeddings",
        "create",
        {"model": "text-embedding-3-small", "input": ["a", "b"]},
        "embeddings",
        embeddings=True,
    ),
]

SHAPES_BY_NAME = {shape.name: shape for shape in SHAPES}


def resource_of(client: Any, shape: CallShape, mode: str) -> Any:
    resource = client
    for part in shape.resource.split("."):
        resource = getattr(resource, part)
    if mode == "raw":
        resource = resource.with_raw_response
    elif mode == "streaming":
        resource = resource.with_streaming_response
    return resource


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _drain(value: Any) -> list[Any]:
    if hasattr(value, "__aiter__"):
        return [item async for item in value]
    return list(value)


async def run_call(client: Any, shape: CallShape, mode: str = "plain", **extra: Any) -> Any:
    """Make the call and consume it fully; return (result, items) as the app saw them."""
    method = getattr(resource_of(client, shape, mode), shape.method)
    kwargs = {**shape.kwargs, **extra}
    if shape.manager:
        manager = method(**kwargs)
        if hasattr(manager, "__aenter__"):
            async with manager as stream:
                items = await _drain(stream)
                final = await _maybe_await(
                    stream.get_final_completion()
                    if hasattr(stream, "get_final_completion")
                    else stream.get_final_response()
                )
            return final, items
        with manager as stream:
            items = list(stream)
            final = (
                stream.get_final_completion()
                if hasattr(stream, "get_final_completion")
                else stream.get_final_response()
            )
        return final, items
    if mode == "plain":
        result = await _maybe_await(method(**kwargs))
        items = await _drain(result) if shape.streaming else []
        return result, items
    if mode == "raw":
        raw = await _maybe_await(method(**kwargs))
        parsed = raw.parse()
        items = await _drain(parsed) if shape.streaming else []
        return parsed, items
    context = method(**kwargs)
    if hasattr(context, "__aenter__"):
        async with context as response:
            parsed = await response.parse()
            items = await _drain(parsed) if shape.streaming else []
        return parsed, items
    with context as response:
        parsed = response.parse()
        items = list(parsed) if shape.streaming else []
    return parsed, items
