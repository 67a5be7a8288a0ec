"""Our span processor on the SDK TracerProvider.

Two jobs. First, in ``genai`` mode (``CMDRDATA_SPAN_SOURCE=genai`` when ``instrument()`` ran)
``on_start`` copies the verified customer and metadata from the baggage onto every span another
instrumentation starts while one is set (SPEC §11), as ``cmdrdata.customer_id`` and
``cmdrdata.metadata.<key>``, so their GenAI spans are billed like ours. Never onto our own spans
(their customer, possibly a per-call ``customer_id=``, is already right) and never over a
customer the span already has. Per span it costs one attribute check outside ``genai`` mode,
and one baggage lookup more for a span started without baggage.

Second: a call the sampler dropped reaches no span processor, only the billing sinks
(``billing.py``), so ``TracerProvider.force_flush()`` would return while such a call is still in
a sink's buffer. This processor's ``force_flush()`` drains the sinks, so that once the provider's
flush returns every call that finished before it is durable (SPEC §7); it adds nothing per
span (``on_end`` is the SDK's empty one).

The SDK cannot remove a span processor: ``uninstrument()`` makes ours inert, and a later
``instrument()`` on the same provider switches the same one back on instead of adding another.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from opentelemetry import baggage as otel_baggage
from opentelemetry.context import Context
from opentelemetry.sdk.trace import SpanProcessor

from . import billing
from .customer import read_attribution
from .logs import LogOnce, log_internal_error
from .semconv import CMDRDATA_CUSTOMER_ID, CMDRDATA_METADATA_PREFIX, SCOPE_NAME

_log = logging.getLogger("opentelemetry_instrumentation_cmdrdata")
_lock = threading.Lock()
# One processor per provider, weakly held: a provider nobody uses any more is not kept alive.
_installed: weakref.WeakKeyDictionary[Any, CmdrDataSpanProcessor] = weakref.WeakKeyDictionary()
_attach_failures = LogOnce(_log)


class CmdrDataSpanProcessor(SpanProcessor):
    """Attributes foreign spans (``genai`` mode) and makes the billing hand-over durable when
    the provider is flushed."""

    def __init__(self) -> None:
        self.active = False  # switched on by the instrumentor that attached it
        # True only while active in genai mode: the one check on_start makes otherwise.
        self.copy_attribution = False

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        if not self.copy_attribution:
            return
        if otel_baggage.get_baggage(CMDRDATA_CUSTOMER_ID, parent_context) is None:
            return
        try:
            _copy_attribution(span, parent_context)
        except Exception as exc:  # never fail the app's span
            log_internal_error("copying the customer onto a span", exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self.active:
            billing.flush_sinks()
        return True


def _copy_attribution(span: Any, parent_context: Context | None) -> None:
    scope = span.instrumentation_scope
    if scope is not None and scope.name == SCOPE_NAME:
        return  # ours: the wrapper already chose the customer
    attributes = span.attributes
    if attributes and CMDRDATA_CUSTOMER_ID in attributes:
        return  # the instrumentation (or the app) chose one
    customer_id, metadata = read_attribution(parent_context)  # verified (SPEC §4)
    if customer_id is None:
        return
    copied: dict[str, str] = {CMDRDATA_CUSTOMER_ID: customer_id}
    for key, value in metadata.items():
        name = CMDRDATA_METADATA_PREFIX + key
        if not (attributes and name in attributes):
            copied[name] = value
    span.set_attributes(copied)


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
        _attach_failures.log(
            kind, logging.WARNING, "cmdrdata: could not add its span processor: %s: %s", kind, exc
        )
        return None
    return processor
