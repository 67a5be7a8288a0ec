"""Every kind of stream an app opens, each sync and async, for the stream-ending tests.

``open_stream(shape, servers, flavour)`` makes the call with a real SDK client against the
local fake server and returns the stream the app iterates; ``Opened.close()`` leaves the
stream manager (for the ``.stream()`` helpers) and closes the client.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import pydantic

from tests.servers.anthropic_server import AnthropicUsage
from tests.servers.gemini_server import GeminiUsage
from tests.servers.openai_server import OpenAIUsage

MESSAGES = [{"role": "user", "content": "Say hi"}]
ANTHROPIC_KWARGS: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": MESSAGES,
}
OPENAI_USAGE = OpenAIUsage(prompt_tokens=41, completion_tokens=73, cached_tokens=16)
# 100 uncached + 1000 cache read + 50 cache write = 1150 input tokens.
ANTHROPIC_USAGE = AnthropicUsage(
    input_tokens=100, output_tokens=42, cache_read_input_tokens=1000, cache_creation_input_tokens=50
)
GEMINI_USAGE = GeminiUsage(
    prompt_token_count=100, candidates_token_count=40, thoughts_token_count=25
)

#: Each kind of stream, and its provider.
SHAPES = {
    "openai_chat": "openai",
    "openai_responses": "openai",
    "openai_chat_helper": "openai",
    "anthropic_create": "anthropic",
    "anthropic_manager": "anthropic",
    "gemini": "gemini",
}
#: Input and output tokens of an exhausted stream, per provider.
FULL_USAGE = {"openai": (41, 73), "anthropic": (1150, 42), "gemini": (100, 65)}


def configure(servers: dict[str, Any], provider: str, **extra: Any) -> None:
    """Fixed ids, so two calls stream the very same chunks."""
    usage = {"openai": OPENAI_USAGE, "anthropic": ANTHROPIC_USAGE, "gemini": GEMINI_USAGE}
    servers[provider].configure(usage=usage[provider], chunks=8, response_id="fixed-1", **extra)


@dataclass
class Opened:
    stream: Any
    client: Any
    manager: Any = None
    closers: list[Any] = field(default_factory=list)

    async def close(self) -> None:
        if self.manager is not None:
            if hasattr(self.manager, "__aexit__"):
                await self.manager.__aexit__(None, None, None)
            else:
                self.manager.__exit__(None, None, None)
        close = getattr(self.client, "close", None)
        if close is not None and not hasattr(self.client, "aio"):
            await resolve(close())


async def resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def open_stream(shape: str, servers: dict[str, Any], flavour: str, **extra: Any) -> Opened:
    provider = SHAPES[shape]
    server = servers[provider]
    if provider == "gemini":
        client = server.client()
        if flavour == "async":
            stream = await client.aio.models.generate_content_stream(
                model="gemini-2.5-flash", contents="Say hi", **extra
            )
        else:
            stream = client.models.generate_content_stream(
                model="gemini-2.5-flash", contents="Say hi", **extra
            )
        return Opened(stream, client)
    client = server.async_client() if flavour == "async" else server.client()
    manager = None
    if shape == "openai_chat":
        call = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra
        )
    elif shape == "openai_responses":
        call = client.responses.create(model="gpt-4o-mini", input="Say hi", stream=True, **extra)
    elif shape == "anthropic_create":
        call = client.messages.create(stream=True, **ANTHROPIC_KWARGS, **extra)
    elif shape == "openai_chat_helper":
        manager = client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES, **extra)
    else:
        manager = client.messages.stream(**ANTHROPIC_KWARGS, **extra)
    if manager is None:
        return Opened(await resolve(call), client)
    if flavour == "async":
        return Opened(await manager.__aenter__(), client, manager)
    return Opened(manager.__enter__(), client, manager)


def is_async(stream: Any) -> bool:
    return hasattr(stream, "__aiter__")


async def take(stream: Any, n: int) -> list[Any]:
    """The first ``n`` items, leaving the loop by ``break``."""
    items: list[Any] = []
    if is_async(stream):
        async for item in stream:
            items.append(item)
            if len(items) == n:
                break
    else:
        for item in stream:
            items.append(item)
            if len(items) == n:
                break
    return items


async def rest(stream: Any) -> list[Any]:
    """Everything left, by a new loop over the same stream."""
    if is_async(stream):
        return [item async for item in stream]
    return list(stream)


def dump(item: Any) -> Any:
    """A comparable form of what the app receives."""
    if isinstance(item, pydantic.BaseModel):
        return item.model_dump(mode="json", warnings=False, exclude={"sdk_http_response"})
    return item
