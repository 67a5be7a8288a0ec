"""The one generic wrapper around every SDK method, and safe wrap/unwrap.

Sync and async wrappers are two thin shells over ``_begin`` and
``_on_result``: everything but the ``await`` is shared.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY as _SUPPRESS_KEY

try:  # the plain-string key ``suppress_instrumentation()`` also sets (newer versions)
    from opentelemetry.instrumentation.utils import (
        _SUPPRESS_INSTRUMENTATION_KEY_PLAIN as _SUPPRESS_PLAIN_KEY,
    )
except ImportError:  # pragma: no cover
    _SUPPRESS_PLAIN_KEY = "suppress_instrumentation"

from . import customer
from .invocation import Invocation, log_internal_error
from .raw_response import record_value, wrap_raw_response
from .streams import helper_loop_wrapper

if TYPE_CHECKING:
    from collections.abc import Callable

    from .providers.base import MethodTarget, ProviderHooks
    from .telemetry import Telemetry

_log = logging.getLogger("opentelemetry_instrumentation_cmdrdata")

# Set while one of our wrapped calls runs, so an SDK method that calls another
# wrapped method (a helper over ``create``) yields one span, not two.
_IN_CALL: ContextVar[bool] = ContextVar("cmdrdata_in_call", default=False)

# Per-call keywords given to an SDK helper that sends its request later (a
# stream manager): the helper's wrapper puts them here around the moment the
# wrapped request method is called, and that call takes them as its own.
_PENDING_CALL_KWARGS: ContextVar[dict[str, Any] | None] = ContextVar(
    "cmdrdata_pending_call_kwargs", default=None
)

_MISSING = object()
_RAW_HEADER = "X-Stainless-Raw-Response"
_OUR_KWARGS = ("customer_id", "cmdrdata_metadata", "track_usage")

#: ``MethodTarget.api`` of an SDK's low-level request method: wrapped only to keep
#: our baggage off every request, billed or not.
TRANSPORT = "transport"
#: ``MethodTarget.api`` of an SDK helper stream's ``__iter__``/``__aiter__``: wrapped so
#: that leaving a loop over the helper ends the span (``streams.helper_loop_wrapper``).
HELPER_LOOP = "helper_loop"


def take_call_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split the caller's kwargs into the SDK's and ours, without touching the caller's dict."""
    if (
        "customer_id" not in kwargs
        and "cmdrdata_metadata" not in kwargs
        and ("track_usage" not in kwargs)
    ):
        return kwargs, {}
    sdk = dict(kwargs)
    ours = {key: sdk.pop(key) for key in _OUR_KWARGS if key in sdk}
    return sdk, ours


def call_with_pending_kwargs(ours: dict[str, Any], call: Callable[[], Any]) -> Any:
    """Run ``call`` so the wrapped SDK method it calls takes ``ours`` as its own kwargs."""
    if not ours:
        return call()
    token = _PENDING_CALL_KWARGS.set(ours)
    try:
        return call()
    finally:
        _PENDING_CALL_KWARGS.reset(token)


def _with_pending(kwargs: dict[str, Any]) -> dict[str, Any]:
    pending = _PENDING_CALL_KWARGS.get()
    if pending is None:
        return kwargs
    _PENDING_CALL_KWARGS.set(None)  # for this one call only
    return {**pending, **kwargs}


def split_call_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], Any, Any, bool]:
    """The SDK's kwargs, then our customer_id, cmdrdata_metadata (or _MISSING) and track flag."""
    sdk, ours = take_call_kwargs(kwargs)
    if not ours:
        return sdk, _MISSING, _MISSING, True
    return (
        sdk,
        ours.get("customer_id", _MISSING),
        ours.get("cmdrdata_metadata", _MISSING),
        ours.get("track_usage", True) is not False,
    )


def _suppressed(context: otel_context.Context) -> bool:
    """``not is_instrumentation_enabled()``, for a context already in hand (one lookup less)."""
    return bool(context.get(_SUPPRESS_KEY) or context.get(_SUPPRESS_PLAIN_KEY))


def _is_raw_call(kwargs: dict[str, Any]) -> bool:
    headers = kwargs.get("extra_headers")
    return bool(headers) and _RAW_HEADER in headers


class _Call:
    """A started call: its invocation and the context token to detach."""

    __slots__ = ("in_call_token", "invocation", "kwargs", "raw", "streaming", "token")

    def __init__(
        self,
        invocation: Invocation,
        kwargs: dict[str, Any],
        raw: bool,
        streaming: bool,
        token: object,
        in_call_token: Any,
    ) -> None:
        self.invocation = invocation
        self.kwargs = kwargs
        self.raw = raw
        self.streaming = streaming
        self.token = token
        self.in_call_token = in_call_token

    def leave(self) -> None:
        """Restore the caller's context once the SDK call has returned."""
        try:
            otel_context.detach(self.token)
            _IN_CALL.reset(self.in_call_token)
        except Exception as exc:
            log_internal_error("restoring the context", exc)

    def fail(self, exc: BaseException) -> None:
        """The SDK raised: end the span with the error (the caller re-raises it)."""
        self.leave()
        self.invocation.finish(exc)

    def succeed(self, hooks: ProviderHooks, target: MethodTarget, result: Any) -> Any:
        """The SDK returned: hand its result back, wrapped or recorded."""
        self.leave()
        return _on_result(self, hooks, target, result)


def _begin(
    hooks: ProviderHooks,
    target: MethodTarget,
    telemetry: Telemetry,
    instance: Any,
    kwargs: dict[str, Any],
) -> tuple[dict[str, Any], _Call | None]:
    """Start the span for a call, or decide not to. Never raises."""
    clean, call_customer, call_metadata, track = split_call_kwargs(kwargs)
    if not track or not telemetry.active or _IN_CALL.get():
        return clean, None
    current = otel_context.get_current()
    if _suppressed(current):
        return clean, None
    try:
        info, call_kwargs = hooks.request(target, instance, clean)
        customer_id, metadata, provider_context = customer.split_attribution(current)
        if call_customer is not _MISSING and call_customer is not None:
            call_customer_id = customer.coerce_call_customer_id(call_customer)
            if call_customer_id != customer_id:
                metadata = {}  # baggage metadata belongs to the baggage's customer
            customer_id = call_customer_id
        if call_metadata is not _MISSING:
            metadata = {**metadata, **customer.coerce_call_metadata(call_metadata)}
        invocation = Invocation(telemetry, target.operation, info, customer_id, metadata)
        # The SDK's HTTP request runs inside our span (so HTTP and SDK-native
        # spans nest under it) and without our baggage (so the customer id
        # never travels to the AI provider).
        ctx = trace.set_span_in_context(invocation.span, provider_context)
        token = otel_context.attach(ctx)
        in_call_token = _IN_CALL.set(True)
        return call_kwargs, _Call(
            invocation, call_kwargs, _is_raw_call(call_kwargs), info.streaming, token, in_call_token
        )
    except Exception as exc:
        log_internal_error(f"starting the span of {target.qualname}", exc)
        return clean, None


def _hide_our_baggage() -> object | None:
    """For an uninstrumented call: still never let our baggage reach the provider.

    Returns the token to detach, or None when there was nothing to hide.
    """
    current = otel_context.get_current()
    stripped = customer.context_without_attribution(current)
    return None if stripped is current else otel_context.attach(stripped)


def _on_result(call: _Call, hooks: ProviderHooks, target: MethodTarget, result: Any) -> Any:
    """Hand the SDK's result back, wrapped or recorded. Never raises."""
    invocation = call.invocation
    try:
        if call.raw and hooks.is_raw_response(result):
            return wrap_raw_response(result, invocation, hooks, target, call.streaming)
        return record_value(result, invocation, hooks, target)
    except Exception as exc:
        log_internal_error("handling the result", exc)
        invocation.finish()
        return result


def make_wrapper(
    hooks: ProviderHooks, target: MethodTarget, telemetry: Telemetry
) -> Callable[..., Any]:
    """Build the wrapt wrapper for one SDK method: two thin shells over ``_Call``."""
    if target.is_async:

        async def run_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            call_kwargs, call = _begin(hooks, target, telemetry, instance, kwargs)
            if call is None:
                return await _async_hiding_wrapper(wrapped, instance, args, call_kwargs)
            try:
                result = await wrapped(*args, **call_kwargs)
            except BaseException as exc:
                call.fail(exc)
                raise
            return call.succeed(hooks, target, result)

        def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            # Pending kwargs are taken when the coroutine is created: an SDK helper
            # may create it in one place and await it in another.
            return run_async(wrapped, instance, args, _with_pending(kwargs))

        return async_wrapper

    def sync_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call_kwargs, call = _begin(hooks, target, telemetry, instance, _with_pending(kwargs))
        if call is None:
            return _hiding_wrapper(wrapped, instance, args, call_kwargs)
        try:
            result = wrapped(*args, **call_kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        return call.succeed(hooks, target, result)

    return sync_wrapper


def _hiding_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    # Inside one of our calls the context is already without our baggage.
    token = None if _IN_CALL.get() else _hide_our_baggage()
    if token is None:
        return wrapped(*args, **kwargs)
    try:
        return wrapped(*args, **kwargs)
    finally:
        otel_context.detach(token)


async def _async_hiding_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    token = None if _IN_CALL.get() else _hide_our_baggage()
    try:
        return await wrapped(*args, **kwargs)
    finally:
        if token is not None:
            otel_context.detach(token)


def when_imported(module_name: str, callback: Callable[[Any], None]) -> None:
    """Run ``callback(module)`` once the module is imported (now, if it already is).

    An error in the callback is logged, never raised into the app's import.
    """

    def guarded(module: Any) -> None:
        try:
            callback(module)
        except Exception as exc:
            log_internal_error(f"instrumenting {module_name}", exc)

    wrapt.register_post_import_hook(guarded, module_name)


def module_exists(module_name: str) -> bool:
    """Whether the module can be imported (its parent package gets imported to tell)."""
    if module_name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def _resolve(module_name: str, qualname: str) -> tuple[Any, str] | None:
    """Find the class (or module) owning the method; None if it is not there."""
    try:
        owner: Any = importlib.import_module(module_name)
    except Exception:
        return None
    *path, attr = qualname.split(".")
    for part in path:
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    if not callable(getattr(owner, attr, None)):
        return None
    return owner, attr


def wrap_target(hooks: ProviderHooks, target: MethodTarget, telemetry: Telemetry) -> bool:
    """Wrap one method; a missing or renamed one is skipped with one debug log."""
    found = _resolve(target.module, target.qualname)
    if found is None:
        _log.debug("%s.%s not found; not instrumented", target.module, target.qualname)
        return False
    owner, attr = found
    original = vars(owner).get(attr) if isinstance(owner, type) else getattr(owner, attr)
    if original is None:
        original = getattr(owner, attr)
    if _is_ours(original):
        return False
    try:
        if target.api == TRANSPORT:
            handler = _async_hiding_wrapper if target.is_async else _hiding_wrapper
        elif target.api == HELPER_LOOP:
            handler = helper_loop_wrapper(target.is_async)
        else:
            handler = hooks.custom_wrapper(target, telemetry) or make_wrapper(
                hooks, target, telemetry
            )
        wrapper = wrapt.FunctionWrapper(original, handler)
        wrapper._self_cmdrdata = True
        setattr(owner, attr, wrapper)
    except Exception as exc:
        _log.debug("could not wrap %s.%s: %s", target.module, target.qualname, exc)
        return False
    return True


def unwrap_target(target: MethodTarget) -> None:
    """Take our wrapper out of the method, leaving any other instrumentation's in place."""
    found = _resolve(target.module, target.qualname)
    if found is None:
        return
    owner, attr = found
    splice_out_ours(owner, attr)


# wrapt 2 names the base of every proxy BaseObjectProxy (its ObjectProxy is a subclass).
_PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


def splice_out_ours(owner: Any, attr: str) -> bool:
    """Remove our wrapper from ``owner.attr``'s chain of wrappers, wherever it sits in it.

    Outermost: the attribute gets what ours wrapped. Under another instrumentation's wrapt
    wrapper (OpenLLMetry, the official ones wrap after us): that wrapper is pointed past ours,
    so theirs keeps working and ``unwrap`` by them later restores the original. A wrapper that
    is no wrapt proxy cannot be re-pointed; there ours stays and passes calls straight through
    (the instrumentor is off). Returns whether ours was removed.
    """
    outer: Any = None
    current = vars(owner).get(attr) if isinstance(owner, type) else getattr(owner, attr, None)
    while isinstance(current, _PROXY):
        if _is_ours(current):
            if outer is None:
                setattr(owner, attr, current.__wrapped__)
            else:
                outer.__wrapped__ = current.__wrapped__
            return True
        outer, current = current, current.__wrapped__
    return False


def _is_ours(obj: Any) -> bool:
    """Whether this very wrapper is ours. A plain ``getattr`` would not tell: a wrapt proxy
    forwards the attributes it lacks to what it wraps, so theirs over ours looks like ours."""
    if not isinstance(obj, wrapt.FunctionWrapper):
        return False
    try:
        return object.__getattribute__(obj, "_self_cmdrdata") is True
    except AttributeError:
        return False
