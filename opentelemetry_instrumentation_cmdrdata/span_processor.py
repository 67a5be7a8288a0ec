"""Our span processor on the SDK TracerProvider.

Its job for now: a call the sampler dropped reaches no span processor, only the billing sinks
(``billing.py``), so ``TracerProvider.force_flush()`` would return while such a call is still in
a sink's buffer. This processor's ``force_flush()`` drains the sinks, so that once the provider's
flush returns every call that finished before it is durable (SPEC §7). Per span it costs two
empty method calls.

The SDK cannot remove a span processor: ``uninstrument()`` makes ours inert, and a later
``instrument()`` on the same provider switches the same one back on instead of adding another.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor

from . import billing

_log = logging.getLogger("opentelemetry_instrumentation_cmdrdata")
_lock = threading.Lock()
# One processor per provider, weakly held: a provider nobody uses any more is not kept alive.
_installed: weakref.WeakKeyDictionary[Any, CmdrDataSpanProcessor] = weakref.WeakKeyDictionary()
_failed: set[str] = set()


class CmdrDataSpanProcessor(SpanProcessor):
    """Makes the billing hand-over durable when the provider is flushed."""

    def __init__(self) -> None:
        self.active = False  # switched on by the instrumentor that attached it

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self.active:
            billing.flush_sinks()
        return True


def attach(provider: Any) -> CmdrDataSpanProcessor | None:
    """Our processor on ``provider``, added once and reused; None when it is not an SDK
    provider (the API's proxy or no-op one takes no processors). Never raises."""
    add = getattr(provider, "add_span_processor", None)
    if add is None:
        return None
    try:
        with _lock:
            processor = _installed.get(provider)
            if processor is None:
                processor = CmdrDataSpanProcessor()
                add(processor)
                _installed[provider] = processor
    except Exception as exc:
        # Asked again per call while the global provider is awaited: say it once.
        kind = type(exc).__name__
        level = logging.DEBUG if kind in _failed else logging.WARNING
        _failed.add(kind)
        _log.log(level, "cmdrdata: could not add its span processor: %s: %s", kind, exc)
        return None
    return processor
