"""The direct intake: finished calls handed over by the instrumentor, billed off the app thread.

The instrumentor gives every finished call to each live exporter (see
``opentelemetry_instrumentation_cmdrdata.billing``), whatever the sampler or the
``BatchSpanProcessor`` queue did with its span. Handing over must cost the application almost
nothing, so it is a deque append; a small daemon thread converts and spools the spans in
batches. When the buffer is full (a burst far beyond what the spool can absorb), the caller
bills its own span synchronously instead: slower for that call, but nothing is dropped.

A sampled call also reaches the exporter through the span pipeline, and whichever path sees it
first bills it (SPEC §7, §8): the instrumentor *claims* the span before ending it, so ``export()``
can tell a span not handed over yet (``SimpleSpanProcessor`` exports inside ``span.end()``: export
bills it, synchronously, and the hand-over that follows skips it) from one already handed over
(export skips it, after draining the buffer, so it is durable when export returns).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Sequence
from typing import Any

_BATCH = 512
_POLL_SECONDS = 0.02
# Bounded: a claim whose span the pipeline never exports (sampled out of a full queue) is
# forgotten in time; only one older than this many later calls could be billed twice.
_MAX_CLAIMS = 50_000
# Where a claimed call is: ended but not handed over yet, in the buffer, or billed by export().
_CLAIMED, _SUBMITTED, _EXPORTED = 1, 2, 3

SpanKey = tuple[int, int]


def span_key(span: Any) -> SpanKey:
    """(trace id, span id): the pipeline exports a copy of the span, so identity cannot match."""
    context = span.context
    return (context.trace_id, context.span_id) if context is not None else (0, 0)


class DirectIntake:
    def __init__(self, bill: Callable[[Sequence[Any]], int], max_buffer: int = 100_000) -> None:
        self._bill = bill
        self._max_buffer = max_buffer
        self._buffer: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._drain_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._claims: collections.OrderedDict[SpanKey, int] = collections.OrderedDict()
        self._claims_lock = threading.Lock()

    def claim(self, span: Any) -> None:
        """Note a span about to end that will be submitted; no other thread knows it yet."""
        claims = self._claims
        claims[span_key(span)] = _CLAIMED
        if len(claims) > _MAX_CLAIMS:
            try:
                claims.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                pass

    def submit(self, span: Any) -> None:
        """Take one finished span; O(1) on the caller's thread except under overflow.

        A claimed span that ``export()`` already billed is skipped.
        """
        if self._stopped:
            return
        claims = self._claims
        if claims:
            key = span_key(span)
            if key in claims:  # absent keys never reappear: only claim() adds one, before this
                with self._claims_lock:
                    state = claims.pop(key, None)
                    if state == _EXPORTED:
                        return
                    if state == _CLAIMED:
                        claims[key] = _SUBMITTED
                    self._append(span)
                return
        self._append(span)

    def exported(self, spans: Sequence[Any]) -> Sequence[Any]:
        """Of the spans a processor exports, those ``export()`` must bill itself.

        Claimed spans not submitted yet are ``export()``'s to bill (``submit`` will skip them);
        spans already submitted are left out. Everything submitted so far is drained first, so
        that every call that finished before ``export()`` returns is durable by then.
        """
        handed_over = False
        keep = spans
        if self._claims:
            keep, handed_over = self._sort_claimed(spans)
        # (handed_over with an empty buffer: the thread may be spooling it right now)
        if handed_over or self._buffer:
            self.drain()
        return keep

    def _sort_claimed(self, spans: Sequence[Any]) -> tuple[list[Any], bool]:
        """(the spans export() bills, whether any was skipped as handed over already)"""
        claims = self._claims
        lock = self._claims_lock
        keep = []
        handed_over = False
        for span in spans:
            key = span_key(span)
            if key not in claims:
                keep.append(span)
                continue
            with lock:
                state = claims.pop(key, None)
                if state == _CLAIMED:
                    claims[key] = _EXPORTED
                elif state == _EXPORTED:  # the same span exported again: billed already
                    claims[key] = _EXPORTED
                    continue
            if state == _SUBMITTED:
                handed_over = True
            else:
                keep.append(span)
        return keep, handed_over

    def _append(self, span: Any) -> None:
        buffer = self._buffer
        if len(buffer) >= self._max_buffer:
            self._bill([span])
            return
        buffer.append(span)
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._start()
        elif len(buffer) >= _BATCH:
            self._wake.set()

    def _start(self) -> None:
        with self._drain_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._run, name="cmdrdata-exporter-intake", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(_POLL_SECONDS)
            self._wake.clear()
            self.drain()

    def drain(self) -> None:
        """Bill everything buffered now (on the calling thread)."""
        with self._drain_lock:
            buffer = self._buffer
            while buffer:
                batch = []
                try:
                    while len(batch) < _BATCH:
                        batch.append(buffer.popleft())
                except IndexError:
                    pass
                self._bill(batch)

    def pending(self) -> int:
        return len(self._buffer)

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread, then bill what is left."""
        self._stopped = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.drain()

    def after_fork(self) -> None:
        """In a forked child: the parent's thread and buffered spans are not ours."""
        self._buffer = collections.deque()
        self._wake = threading.Event()
        self._drain_lock = threading.Lock()
        self._thread = None
        self._claims = collections.OrderedDict()
        self._claims_lock = threading.Lock()
