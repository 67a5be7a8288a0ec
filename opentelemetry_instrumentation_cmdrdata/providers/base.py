"""The one small interface every provider module implements.

The span lifecycle (start, record, finish exactly once, streams, raw
responses) is written once in ``invocation.py``, ``streams.py`` and
``patching.py``; a provider module only knows its SDK's objects: which methods
to wrap, what a request says, and where usage sits in a response or a chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..invocation import Invocation
    from ..telemetry import Telemetry


@dataclass(frozen=True, slots=True)
class MethodTarget:
    """One SDK method to wrap, e.g. ``openai.resources.embeddings`` / ``Embeddings.create``."""

    module: str
    qualname: str
    operation: str
    is_async: bool
    # Free-form tag a provider uses to pick its extraction logic for this method.
    api: str = ""


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


class ProviderHooks:
    """Per-SDK knowledge, behind four hooks. Subclasses are stateless singletons."""

    #: The name used by ``instrument(providers=[...])``.
    name: ClassVar[str]
    #: The module whose import tells us the SDK is installed.
    sdk_module: ClassVar[str]

    def targets(self) -> Sequence[MethodTarget]:
        raise NotImplementedError

    def request(
        self, target: MethodTarget, instance: Any, kwargs: dict[str, Any]
    ) -> tuple[RequestInfo, dict[str, Any]]:
        """Describe the request and return the kwargs to call the SDK with.

        The returned kwargs may be a modified *copy* (never mutate the caller's
        dicts), e.g. to ask for streamed usage.
        """
        raise NotImplementedError

    def on_response(self, invocation: Invocation, target: MethodTarget, response: Any) -> None:
        """Record usage and response attributes from a complete response object."""
        raise NotImplementedError

    def on_chunk(self, invocation: Invocation, chunk: Any) -> bool:
        """Record what a streamed chunk or event carries.

        Return False to hide the chunk from the caller (only the usage chunk we
        asked for on the caller's behalf).
        """
        raise NotImplementedError

    def is_stream(self, result: Any) -> bool:
        """True when the SDK returned a stream object to wrap."""
        raise NotImplementedError

    def is_raw_response(self, result: Any) -> bool:
        """True for ``with_raw_response`` / ``with_streaming_response`` results."""
        return False

    def custom_wrapper(
        self, target: MethodTarget, telemetry: Telemetry
    ) -> Callable[..., Any] | None:
        """A wrapt wrapper of the provider's own for ``target``; None for the generic one.

        For a method whose request is sent later than the call returns (a
        stream manager that sends it on ``__enter__``): the provider's wrapper
        can run ``patching.make_wrapper``'s generic one at that later moment.
        """
        return None
