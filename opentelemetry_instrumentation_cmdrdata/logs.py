"""The package's own log lines: each cause logged once, its repeats kept quiet.

A leaf module (it imports nothing of ours), so every layer can report trouble
without importing the layer that owns the span.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable

LOGGER_NAME = "opentelemetry_instrumentation_cmdrdata"
_log = logging.getLogger(LOGGER_NAME)


class LogOnce:
    """Logs the first line of each cause (a key) at its level, and repeats at ``repeat_level``.

    A cause that keeps happening (a malformed chunk on every call, a sink that is down)
    must not flood the application's log; ``repeat_level=None`` drops repeats.
    """

    __slots__ = ("_lock", "_logger", "_repeat_level", "_seen")

    def __init__(self, logger: logging.Logger, repeat_level: int | None = logging.DEBUG) -> None:
        self._logger = logger
        self._repeat_level = repeat_level
        self._seen: set[Hashable] = set()
        self._lock = threading.Lock()

    def log(
        self,
        key: Hashable,
        level: int,
        message: str,
        *args: object,
        repeat_exc_info: BaseException | None = None,
    ) -> None:
        """``repeat_exc_info``: the traceback, for the repeats only (a debugging aid)."""
        with self._lock:
            first = key not in self._seen
            self._seen.add(key)
        if first:
            self._logger.log(level, message, *args)
        elif self._repeat_level is not None:
            self._logger.log(self._repeat_level, message, *args, exc_info=repeat_exc_info)

    def reset(self) -> None:
        """Forget what was logged (settings were reloaded: the causes may be new)."""
        with self._lock:
            self._seen.clear()


_internal_errors = LogOnce(_log)


def log_internal_error(where: str, exc: BaseException) -> None:
    """An error of ours, never the caller's: one WARNING per place and type, then DEBUG."""
    _internal_errors.log(
        (where, type(exc).__name__),
        logging.WARNING,
        "cmdrdata instrumentation error in %s (the call itself is unaffected): %s: %s",
        where,
        type(exc).__name__,
        exc,
        repeat_exc_info=exc,
    )
