"""The one small interface every provider module implements.

The span lifecycle (start, record, finish exactly once, streams, raw
responses) and every way of wrapping a method (``targets.Strategy``) are
written once in the generic layer; a provider module only knows its SDK's
objects: which methods to wrap and how, what a request says, and where usage
sits in a response or a chunk. It never imports the generic layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..targets import MethodTarget, RequestInfo, Strategy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..invocation import Invocation


class ProviderHooks:
    """Per-SDK knowledge. Subclasses are stateless singletons, built with the ``Telemetry``."""

    #: The name used by ``instrument(providers=[...])``.
    name: ClassVar[str]
    #: The module whose import tells us the SDK is installed.
    sdk_module: ClassVar[str]
    #: Where a stream manager (``Strategy.DEFERRED_REQUEST`` / ``STREAM_MANAGER``) keeps the
    #: request it sends when entered: the end of the attribute's name (Stainless SDKs keep it
    #: name-mangled as ``_<Manager>__api_request``).
    deferred_request_suffix: ClassVar[str] = "__api_request"

    def targets(self) -> Sequence[MethodTarget]:
        raise NotImplementedError

    def request(
        self,
        target: MethodTarget,
        instance: Any,
        kwargs: dict[str, Any],
        args: tuple[Any, ...] = (),
    ) -> tuple[RequestInfo, dict[str, Any]] | None:
        """Describe the request and return the kwargs to call the SDK with.

        ``args`` are the call's positional arguments (a method that picks its
        operation from them, like botocore's ``_make_api_call(operation_name,
        api_params)``). None: not a call we instrument; it runs untouched. The
        returned kwargs may be a modified *copy* (never mutate the caller's
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


__all__ = ["MethodTarget", "ProviderHooks", "RequestInfo", "Strategy"]
