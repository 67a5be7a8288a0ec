"""Fixtures for the exporter tests: real spans from a real TracerProvider, fast exporters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from cmdrdata_exporter import CmdrDataSpanExporter
from tests.servers.cmdrdata_server import TEST_API_KEY, CmdrDataServer
from tests.span_maker import BASE_ATTRS, usage_spans  # noqa: F401  (BASE_ATTRS for tests)

# Short timers so fault tests take fractions of a second; documented private knobs.
FAST = {
    "timeout": 0.5,
    "_backoff_base": 0.01,
    "_backoff_cap": 0.2,
    "_auth_retry": 0.2,
    "_poll_interval": 0.05,
    "shutdown_timeout": 2.0,
}

SpanMaker = Callable[..., list[ReadableSpan]]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CMDRDATA_* from the developer's shell, and no writes to the real cache dir."""
    import os

    for name in list(os.environ):
        if name.startswith("CMDRDATA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def make_spans() -> SpanMaker:
    """``make_spans(n, scope=..., error=False, service=..., **attributes)`` -> ended spans."""
    return usage_spans


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def make_exporter(
    spool_dir: Path, cmdrdata_server: CmdrDataServer
) -> Iterator[Callable[..., CmdrDataSpanExporter]]:
    """Exporters aimed at the fake server with fast timers; shut down after the test."""
    made: list[CmdrDataSpanExporter] = []

    def make(**overrides: Any) -> CmdrDataSpanExporter:
        kwargs = {
            "api_key": TEST_API_KEY,
            "endpoint": cmdrdata_server.url,
            "spool_dir": spool_dir,
            **FAST,
            **overrides,
        }
        exporter = CmdrDataSpanExporter(**kwargs)
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown(timeout_millis=500)
