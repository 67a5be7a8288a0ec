"""Direct billing: every finished call reaches the billing exporters, whatever tracing drops.

Tracing is allowed to lose spans — samplers drop most traces on purpose and a
full ``BatchSpanProcessor`` queue drops the rest of a burst — but a billing
record must not be lost. So when a call finishes, its span (or, for a span the
sampler dropped, a finished record with the same ids and attributes) is handed
straight to every registered *sink*: in practice each live
``cmdrdata_exporter.CmdrDataSpanExporter`` with ``bill_unsampled`` on. Whichever
of the two paths (this hand-over, or the span pipeline's ``export()``) brings a
call to an exporter first bills it and the other skips it, so each call is
billed exactly once per exporter, and the spans the sampler dropped still never
reach any other exporter. A sink holds what it took
for a moment before making it durable; ``flush_sinks()`` (called by the
TracerProvider's ``force_flush()`` through our span processor) waits for that.

The registry lives here, at the start of the data path, so the instrumentor
never imports the exporter: the exporter registers itself.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, Protocol

from .logs import LogOnce

_log = logging.getLogger("opentelemetry_instrumentation_cmdrdata")


class BillingSink(Protocol):
    def claim_direct(self, span: Any) -> None:
        """Note, before the span ends, that it will be billed directly.

        A ``SimpleSpanProcessor`` exports a span inside ``span.end()``; the claim lets the
        exporter skip it there, so it is billed once.
        """

    def submit_direct(self, span: Any) -> None:
        """Take one finished span of ours; must be fast, thread-safe and never raise."""

    def flush_direct(self) -> None:
        """Make every span taken so far durable before returning."""


# Weak references, so an exporter nobody holds any more is not kept alive by us. The registry
# is read on every call and changed about never: each change publishes a new tuple, so a call
# reads one global instead of iterating a WeakSet (2 µs).
_lock = threading.RLock()  # reentrant: a weakref callback may run while it is held
_refs: tuple[weakref.ref[Any], ...] = ()


def _publish(refs: tuple[weakref.ref[Any], ...]) -> None:
    global _refs
    _refs = refs


def _forget(ref: weakref.ref[Any]) -> None:
    """Weakref callback: the sink was garbage-collected."""
    with _lock:
        _publish(tuple(r for r in _refs if r is not ref))


def register_sink(sink: BillingSink) -> None:
    with _lock:
        if not any(r() is sink for r in _refs):
            _publish((*_refs, weakref.ref(sink, _forget)))


def unregister_sink(sink: BillingSink) -> None:
    with _lock:
        _publish(tuple(r for r in _refs if r() is not sink))


def sinks() -> tuple[Any, ...]:
    """The sinks now: take this once per call, before the span ends."""
    refs = _refs
    if not refs:
        return ()
    return tuple(sink for ref in refs if (sink := ref()) is not None)


def claim(sinks: tuple[Any, ...], span: Any) -> None:
    """Tell the sinks this (sampled) span will reach them directly. Never raises."""
    _each(sinks, "claim_direct", "claim a span", span)


def bill_directly(sinks: tuple[Any, ...], span: Any) -> None:
    """Hand one finished span to the sinks. Never raises."""
    _each(sinks, "submit_direct", "take a span", span)


def flush_sinks() -> None:
    """Make every call handed to a sink so far durable. Never raises."""
    _each(sinks(), "flush_direct", "flush")


_sink_failures = LogOnce(_log)


def _each(sinks: tuple[Any, ...], method: str, what: str, *args: Any) -> None:
    """Call ``method(*args)`` on every sink; a failing sink is logged once, the rest still run."""
    for sink in sinks:
        try:
            getattr(sink, method)(*args)
        except Exception as exc:
            _sink_failures.log(
                (method, type(exc).__name__),
                logging.WARNING,
                "cmdrdata: a billing sink failed to %s: %s",
                what,
                exc,
            )
