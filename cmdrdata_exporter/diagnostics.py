"""Counts of what was dropped, clipped or replaced, logged once per kind.

A malformed attribute on one span is usually on every span of that code path, so a log line per
span would flood the application's logs; the count keeps the full picture for ``status``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable

logger = logging.getLogger("cmdrdata_exporter")


class Drops:
    """Thread-safe counters keyed by kind; the first occurrence of a kind is logged."""

    def __init__(self, log: logging.Logger = logger) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._log = log
        # Told of every count (the exporter's metrics); never called under the lock.
        self.listener: Callable[[str, int], None] | None = None

    def count(self, kind: str, detail: str, n: int = 1, level: int = logging.WARNING) -> None:
        with self._lock:
            first = kind not in self._counts
            self._counts[kind] += n
        if self.listener is not None:
            self.listener(kind, n)
        if first:
            self._log.log(level, "%s (logged once; further cases are only counted)", detail)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset_lock(self) -> None:
        """After fork the lock may be held by a thread that no longer exists."""
        self._lock = threading.Lock()


# Used when span_to_event is called without an exporter's own counters.
DEFAULT_DROPS = Drops()
