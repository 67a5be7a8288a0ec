"""Pytest fixtures around the fake cmdrdata server (import them into a conftest)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.cmdrdata_server import TEST_API_KEY, CmdrDataServer

__all__ = ["TEST_API_KEY", "CmdrDataServer", "cmdrdata_server"]


@pytest.fixture
def cmdrdata_server() -> Iterator[CmdrDataServer]:
    """A running fake cmdrdata on 127.0.0.1 (random port); ``.url`` is its events endpoint."""
    with CmdrDataServer() as server:
        yield server
