"""What a provider declares about each SDK method: where it is, how it is wrapped, what it asks.

A leaf module (it imports nothing of ours): the generic layer, the invocation and
the provider modules all import these types, and none of them imports another
for them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Strategy(enum.Enum):
    """How the generic layer wraps a method: the one choice a provider makes about wrapping."""

    #: One span around the call; a stream or raw response it returns is wrapped and ends it.
    CALL = "call"
    #: The call returns a generator that sends its request when first iterated (the SDK's
    #: generator functions): the span starts with the call and that first step runs in it.
    LAZY_STREAM = "lazy_stream"
    #: The call returns a stream manager that sends its own request when entered: the span
    #: starts then, around that request.
    DEFERRED_REQUEST = "deferred_request"
    #: The call returns a stream manager whose request, when entered, is another wrapped
    #: method: no span here; the call's per-call keywords go on to that method's span.
    STREAM_MANAGER = "stream_manager"
    #: No span: the method makes its requests through other wrapped methods, which take its
    #: per-call keywords (while its stream is iterated too).
    SCOPE = "scope"
    #: No span: the SDK's low-level request method, wrapped so that no request, billed or
    #: not, carries our baggage.
    TRANSPORT = "transport"
    #: No span: an SDK helper stream's ``__iter__``/``__aiter__`` (``messages.stream()``'s
    #: ``MessageStream``, OpenAI's ``.stream()`` helpers), wrapped so that leaving a loop over
    #: the helper ends the call's span (``streams.helper_loop_wrapper``).
    HELPER_LOOP = "helper_loop"


@dataclass(frozen=True, slots=True)
class MethodTarget:
    """One SDK method to wrap, e.g. ``openai.resources.embeddings`` / ``Embeddings.create``."""

    module: str
    qualname: str
    operation: str
    is_async: bool
    #: The provider's own tag for the request and response shape (``"embeddings"``); it
    #: never changes how the method is wrapped: ``strategy`` does.
    api: str = ""
    strategy: Strategy = Strategy.CALL


@dataclass(slots=True)
class RequestInfo:
    """What a provider reads from a request before the span starts."""

    provider_name: str
    model: str | None
    server_address: str | None = None
    server_port: int | None = None
    streaming: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)
    # Set when the instrumentor asked the provider for usage the caller did not
    # request: the extra usage-only chunk is then hidden from the caller.
    hide_usage_chunk: bool = False
    #: The operation, where the method picks it at run time (one method, several APIs);
    #: None: the target's.
    operation: str | None = None
