"""Small helpers the provider modules share: reading numbers and request params safely."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import semconv as sc


def token_count(value: Any) -> int | None:
    """A usage number as reported, or None when it is absent or not a sane count."""
    if type(value) is int and value >= 0:
        return value
    return None


def add_counts(*values: Any) -> int | None:
    """Sum the counts that are present; None when none is."""
    total = None
    for value in values:
        count = token_count(value)
        if count is not None:
            total = count if total is None else total + count
    return total


def number_param(value: Any) -> int | float | None:
    """A numeric request parameter, skipping the SDKs' omit/NOT_GIVEN sentinels."""
    if type(value) in (int, float):
        return value
    return None


def stop_sequences(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)) or not value:
        return None
    for item in value:  # a loop: cheaper than all() over a generator for a few items
        if not isinstance(item, str):
            return None
    return tuple(value)


_NUMBER_PARAMS = {
    "temperature": sc.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": sc.GEN_AI_REQUEST_TOP_P,
    "top_k": sc.GEN_AI_REQUEST_TOP_K,
    "frequency_penalty": sc.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": sc.GEN_AI_REQUEST_PRESENCE_PENALTY,
}
_NUMBER_KEYS = frozenset(_NUMBER_PARAMS)


def common_request_attributes(
    kwargs: dict[str, Any],
    *,
    max_tokens: tuple[str, ...] = ("max_tokens",),
    stop: str = "stop",
) -> dict[str, Any]:
    """The ``gen_ai.request.*`` parameters most chat APIs share, when given."""
    attributes: dict[str, Any] = {}
    for name in max_tokens:
        value = kwargs.get(name)
        if type(value) is int:
            attributes[sc.GEN_AI_REQUEST_MAX_TOKENS] = value
            break
    for key in _NUMBER_KEYS.intersection(kwargs):
        value = number_param(kwargs[key])
        if value is not None:
            attributes[_NUMBER_PARAMS[key]] = value
    seed = kwargs.get("seed")
    if type(seed) is int:
        attributes[sc.GEN_AI_REQUEST_SEED] = seed
    sequences = stop_sequences(kwargs.get(stop))
    if sequences:
        attributes[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = sequences
    return attributes


def client_server(
    cache: ServerCache,
    client: Any,
    default_provider: str,
    provider_of: Callable[[Any, str | None, int | None], str],
) -> tuple[str, str | None, int | None]:
    """(provider name, address, port) of an SDK client with a ``base_url``, once per URL."""
    # ``_base_url`` first: openai 3.x's ``base_url`` property runs an import on each access.
    base_url = getattr(client, "_base_url", None) or getattr(client, "base_url", None)
    if base_url is None:
        return default_provider, None, None
    known = cache.get(base_url)
    if known is not None:
        return known
    host = getattr(base_url, "host", None) or None
    port = getattr(base_url, "port", None)
    if port is None:
        port = 443 if getattr(base_url, "scheme", "https") == "https" else 80
    value = (provider_of(client, host, port), host, port)
    cache.put(base_url, value)
    return value


class ServerCache:
    """Per-client facts (provider name, address, port), computed once per base URL."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, tuple[Any, tuple[str, str | None, int | None]]] = {}

    def get(self, key: Any) -> tuple[str, str | None, int | None] | None:
        entry = self._entries.get(id(key))
        if entry is not None and entry[0] is key:
            return entry[1]
        return None

    def put(self, key: Any, value: tuple[str, str | None, int | None]) -> None:
        if len(self._entries) > 1024:
            self._entries.clear()
        self._entries[id(key)] = (key, value)
