"""The direct intake: finished calls handed over by the instrumentor, billed off the app thread.

The instrumentor gives every finished call to each live exporter (see
``opentelemetry_instrumentation_cmdrdata.billing``), whatever the sampler or the
``BatchSpanProcessor`` queue did with its span. Handing over must cost the application almost
nothing, so it is a deque append; a small daemon thread converts and spools the spans in
batches. When the buffer is full (a burst far beyond what the spool can absorb), the caller
bills its own span synchronously instead: slower for that call, but nothing is dropped.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Sequence
from typing import Any

_BATCH = 512
_POLL_SECONDS = 0.02


class DirectIntake:
    def __init__(self, bill: Callable[[Sequence[Any]], int], max_buffer: int = 100_000) -> None:
        self._bill = bill
        self._max_buffer = max_buffer
        self._buffer: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._drain_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def submit(self, span: Any) -> None:
        """Take one finished span; O(1) on the caller's thread except under overflow."""
        if self._stopped:
            return
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
