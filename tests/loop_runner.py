"""One event loop per test module, for SDK clients shared by a module's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class LoopRunner:
    """Runs coroutines on one loop: google-genai 1.x binds its async HTTP client to the loop
    it first ran on, and a module shares one client."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
