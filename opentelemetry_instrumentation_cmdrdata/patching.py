"""Wrapping SDK methods: the one place that turns a target's strategy into a wrapper,
and safe wrap/unwrap.

Each ``targets.Strategy`` is built in one module of the generic layer (``calls``,
``managers``, ``scopes``); a provider only names the strategy of each method.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from typing import TYPE_CHECKING, Any

import wrapt

from .calls import call_wrapper, transport_wrapper
from .logs import log_internal_error
from .managers import deferred_request_wrapper, stream_manager_wrapper
from .scopes import scope_wrapper
from .streams import helper_loop_wrapper
from .targets import Strategy

if TYPE_CHECKING:
    from collections.abc import Callable

    from .providers.base import ProviderHooks
    from .targets import MethodTarget
    from .telemetry import Telemetry

_log = logging.getLogger("opentelemetry_instrumentation_cmdrdata")


def make_wrapper(
    hooks: ProviderHooks, target: MethodTarget, telemetry: Telemetry
) -> Callable[..., Any]:
    """The wrapt wrapper for one SDK method, as its strategy says."""
    strategy = target.strategy
    if strategy is Strategy.CALL or strategy is Strategy.LAZY_STREAM:
        return call_wrapper(hooks, target, telemetry)
    if strategy is Strategy.DEFERRED_REQUEST:
        return deferred_request_wrapper(hooks, target, telemetry)
    if strategy is Strategy.STREAM_MANAGER:
        return stream_manager_wrapper(hooks, target)
    if strategy is Strategy.SCOPE:
        return scope_wrapper(hooks, target)
    if strategy is Strategy.TRANSPORT:
        return transport_wrapper(target.is_async)
    if strategy is Strategy.HELPER_LOOP:
        return helper_loop_wrapper(target.is_async)
    raise ValueError(f"unknown strategy {strategy!r}")


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
        wrapper = wrapt.FunctionWrapper(original, make_wrapper(hooks, target, telemetry))
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
