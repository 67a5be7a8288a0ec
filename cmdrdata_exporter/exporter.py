"""``CmdrDataSpanExporter``: spans in, durable usage events out, delivery in the background.

``export()`` converts, writes to the spool and returns; it never waits for the network, so the
``BatchSpanProcessor`` worker (and with ``SimpleSpanProcessor`` the application thread) is never
held up by cmdrdata. Delivery belongs to a daemon sender thread per exporter. Once ``export()`` or
a ``force_flush()`` returns, every call that finished before it is in the spool, also the calls
the instrumentor handed over directly (SPEC §7).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from cmdrdata_exporter import calls
from cmdrdata_exporter.config import Settings, resolve
from cmdrdata_exporter.diagnostics import Drops
from cmdrdata_exporter.events import encode, span_to_event, spans_to_events
from cmdrdata_exporter.intake import DirectIntake
from cmdrdata_exporter.metrics import exporter_metrics
from cmdrdata_exporter.sender import Delivery, Sender
from cmdrdata_exporter.spool import ResilientSpool
from opentelemetry_instrumentation_cmdrdata import billing, pricing

logger = logging.getLogger("cmdrdata_exporter")

_LIVE: weakref.WeakSet[CmdrDataSpanExporter] = weakref.WeakSet()


def live_exporters() -> list[CmdrDataSpanExporter]:
    """The exporters of this process that are not shut down (a snapshot)."""
    return list(_LIVE)


class CmdrDataSpanExporter(SpanExporter):
    """Bills each GenAI span as one cmdrdata usage event.

    With no arguments it reads ``CMDRDATA_*`` from the environment and never raises; keyword
    arguments (``api_key=``, ``endpoint=``, ``timeout=``, ``spool_dir=``, ``spool=``,
    ``default_customer_id=``, ``span_source=``, ``disabled=``, ``bill_unsampled=``, ``cost=``,
    ``prices_file=``,
    ``max_spool_events=``, ``shutdown_timeout=``, ``concurrency=``) override it and are
    validated strictly. ``meter_provider=`` receives the exporter's own metrics (else the
    global MeterProvider; SPEC section 13).

    Once ``export()``, ``force_flush()`` or the TracerProvider's ``force_flush()`` returns, every
    instrumented call that finished before it is durable, whichever path billed it; a ``kill -9``
    then loses nothing. Events that only the in-memory queue held (``CMDRDATA_SPOOL=memory``, or
    a spool that could not be written) and that are undelivered at ``shutdown()`` are lost: one
    ERROR line says how many.
    """

    def __init__(self, *, meter_provider: MeterProvider | None = None, **overrides: Any) -> None:
        self._settings: Settings = resolve(overrides)
        for problem in self._settings.problems:
            logger.log(problem.level, "cmdrdata exporter: %s", problem.message)
        self._drops = Drops()
        self._ledger = calls.CallLedger(float(self._settings.foreign_hold))
        self._lock = threading.Lock()
        self._closed = False
        self._spool: ResilientSpool | None = None
        self._delivery: Delivery | None = None
        self._sender: Sender | None = None
        s = self._settings
        # At start: a broken prices file is logged now, and list prices load in the background.
        pricing.pricer_for(s.cost and not s.disabled, s.prices_file)
        if not s.disabled:
            spool_dir = s.spool_dir if s.spool == "sqlite" else None
            self._spool = ResilientSpool(spool_dir, s.max_spool_events, self._drops)
        # Our own metrics (SPEC section 13); the callbacks hold only a weak reference.
        self._metrics = None if s.disabled else exporter_metrics(meter_provider, *_observers(self))
        if self._metrics is not None:
            self._drops.listener = self._metrics.dropped
        if self._spool is not None and s.delivery_blocker is None:
            self._delivery = Delivery(s, self._spool, self._drops, self._metrics)
        # Billing that does not depend on sampling or the span queue (SPEC §8): the
        # instrumentor hands each finished call to us directly, and export() bills only
        # those of its spans not handed over yet, so no call is billed twice.
        self._intake: DirectIntake | None = None
        if self._spool is not None and s.bill_unsampled:
            self._intake = DirectIntake(self._bill_accepted)
            billing.register_sink(self)
        _LIVE.add(self)
        self._ensure_sender()

    def __repr__(self) -> str:
        return f"CmdrDataSpanExporter({self._settings!r})"

    @property
    def settings(self) -> Settings:
        return self._settings

    # -- billing -------------------------------------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._closed:
            self._drops.count(
                "export_after_shutdown", "spans exported after shutdown() are not billed"
            )
            return SpanExportResult.FAILURE
        intake = self._intake
        if intake is not None:
            # Calls handed to us directly are billed by that path (and durable once this returns).
            spans = intake.exported(spans)
            if not spans:
                return SpanExportResult.SUCCESS
        self.bill_spans(spans)
        return SpanExportResult.SUCCESS

    def claim_direct(self, span: ReadableSpan) -> None:
        """The instrumentor will hand us this span directly once it has ended."""
        if self._intake is not None:
            self._intake.claim(span)

    def submit_direct(self, span: ReadableSpan) -> None:
        """Take one finished call from the instrumentor: sampled or not, it is billed.

        O(1) on the application's thread; conversion and spooling happen in the background.
        """
        intake = self._intake
        if intake is not None and not self._closed:
            intake.submit(span)

    def flush_direct(self) -> None:
        """Make every call handed over so far durable before returning (a TracerProvider's
        ``force_flush()`` reaches us here, also for calls no span processor saw)."""
        if self._intake is not None:
            self._intake.drain()

    def bill_spans(self, spans: Sequence[ReadableSpan]) -> int:
        """Convert and spool these spans' events now; returns how many were newly queued.

        Safe to call from any thread, also for spans that no processor will export (unsampled
        calls). Never raises.
        """
        if self._closed:
            return 0
        return self._bill_accepted(spans)

    def _bill_accepted(self, spans: Sequence[ReadableSpan]) -> int:
        """``bill_spans`` without the shutdown check: the direct intake bills through this,
        also when ``shutdown()`` drains it after ``_closed`` is set (else those calls, taken
        before shutdown, would be dropped)."""
        if self._spool is None:
            return 0
        try:
            if self._settings.span_source == "genai":
                return self._bill_genai(spans)
            return self.enqueue(spans_to_events(spans, self._settings, self._drops))
        except Exception as exc:
            self._drops.count(
                "internal_error", f"could not bill spans ({type(exc).__name__}: {exc})"
            )
            return 0

    def _bill_genai(self, spans: Sequence[ReadableSpan]) -> int:
        """Any instrumentation's spans, one event per call (``cmdrdata_exporter.calls``)."""
        pairs = [(span, span_to_event(span, self._settings, self._drops)) for span in spans]
        with self._lock:  # the ledger is shared state
            added = calls.bill(self._ledger, pairs, self._spool, encode)
        self._ensure_sender()
        if self._sender is not None:
            self._sender.wake()
        return added

    def enqueue(self, events: Sequence[dict[str, Any]]) -> int:
        """Make events durable and wake the sender."""
        if not events or self._spool is None:
            return 0
        added = self._spool.put([(e["metadata"]["event_id"], encode(e)) for e in events])
        self._ensure_sender()
        if self._sender is not None:
            self._sender.wake()
        return added

    # -- delivery lifecycle ----------------------------------------------------------------

    def _ensure_sender(self) -> None:
        if self._sender is None and self._delivery is not None and not self._closed:
            with self._lock:
                if self._sender is None:
                    self._sender = Sender(self._delivery, self._settings.poll_interval)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Deliver what is due now, within the deadline; True when nothing is left queued."""
        if self._spool is None:
            return True
        if self._intake is not None:
            self._intake.drain()
        if self._delivery is None or self._closed:
            return self._spool.pending() == 0
        return self._delivery.drain(time.monotonic() + timeout_millis / 1000)

    def shutdown(self, timeout_millis: int | None = None) -> None:
        """Stop accepting, deliver what fits in the deadline, keep the rest in the spool.

        Idempotent; never waits past the deadline (default ``shutdown_timeout``, 5 s).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _LIVE.discard(self)
        billing.unregister_sink(self)
        if self._intake is not None:
            self._intake.stop()
        seconds = (
            self._settings.shutdown_timeout if timeout_millis is None else timeout_millis / 1000
        )
        deadline = time.monotonic() + max(seconds, 0)
        finished = True
        try:
            if self._sender is not None:
                self._sender.stop()
            if self._delivery is not None:
                self._delivery.drain(deadline)
            if self._sender is not None:
                finished = self._sender.join(deadline - time.monotonic())
            # A request still in flight owns the client and the spool until it times out;
            # closing them under it would only turn a clean retry into an error.
            if finished and self._delivery is not None:
                self._delivery.close()
                self._spool.release_owner(self._delivery.owner)  # type: ignore[union-attr]
            if finished and self._spool is not None:
                self._spool.close()
            self._report_lost()
        except Exception as exc:
            logger.warning("cmdrdata exporter shutdown: %s", type(exc).__name__)

    def _report_lost(self) -> None:
        """One ERROR line for the undelivered events that only memory held: they die with us."""
        spool = self._spool
        if spool is None or spool.disk is not None:
            return
        left = spool.memory.pending()
        if left:
            why = (
                "CMDRDATA_SPOOL=memory"
                if self._settings.spool == "memory"
                else "the spool could not be written"
            )
            logger.error(
                "cmdrdata exporter shutdown: %d events were not delivered and are lost "
                "(they were held in memory only: %s)",
                left,
                why,
            )

    def status(self) -> dict[str, Any]:
        """Counts (queued, delivered, rejected), rejections, last error, pause and drops."""
        if self._spool is None:
            info: dict[str, Any] = {"queued": 0, "delivered": 0, "rejected": 0, "rejections": []}
            info.update(last_error=None, spool=None)
        else:
            info = self._spool.stats()
        info["paused"] = self._settings.delivery_blocker or (
            self._delivery.paused if self._delivery is not None else None
        )
        info["paused_by"] = self._paused_by()
        info["dropped"] = self._drops.snapshot()
        info["buffered"] = self._intake.pending() if self._intake is not None else 0
        info["disabled"] = self._settings.disabled
        return info

    def _paused_by(self) -> str | None:
        """``auth`` or ``endpoint`` while delivery waits for the settings to work."""
        if self._settings.blocked_by:
            return self._settings.blocked_by
        return self._delivery.pause.blocked if self._delivery is not None else None

    def _queue_state(self) -> tuple[int, float | None] | None:
        if self._closed or self._spool is None:
            return None
        # Not through the resilient wrapper: a read racing shutdown's close() must fail
        # quietly, not count as a disk failure.
        return self._spool.active.queue_state()

    def _after_fork(self) -> None:
        """In a forked child: fresh locks, no inherited thread, client or in-memory events."""
        self._lock = threading.Lock()
        self._drops.reset_lock()
        self._sender = None
        if self._intake is not None:
            self._intake.after_fork()
        if self._spool is not None:
            self._spool.after_fork()
            if self._delivery is not None:
                self._delivery = Delivery(self._settings, self._spool, self._drops, self._metrics)


def _observers(exporter: CmdrDataSpanExporter) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """The metrics callbacks, through a weak reference: a MeterProvider outlives exporters."""
    ref = weakref.ref(exporter)

    def queue_state() -> tuple[int, float | None] | None:
        live = ref()
        return None if live is None else live._queue_state()

    def paused_by() -> str | None:
        live = ref()
        return None if live is None else live._paused_by()

    return queue_state, paused_by


def _after_fork_in_child() -> None:
    for exporter in list(_LIVE):
        exporter._after_fork()


def _shutdown_all() -> None:
    for exporter in list(_LIVE):
        exporter.shutdown()


os.register_at_fork(after_in_child=_after_fork_in_child)
# Registered at import, i.e. normally before the TracerProvider's own atexit hook, so it runs
# after the provider has flushed its last spans into us.
atexit.register(_shutdown_all)
