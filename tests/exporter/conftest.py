"""Fixtures for the exporter tests: real spans from a real TracerProvider, fast exporters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from cmdrdata_exporter import CmdrDataSpanExporter
from opentelemetry_instrumentation_cmdrdata import semconv
from tests.servers.cmdrdata_server import TEST_API_KEY, CmdrDataServer

# Short timers so fault tests take fractions of a second; documented private knobs.
FAST = {
    "timeout": 0.5,
    "_backoff_base": 0.01,
    "_backoff_cap": 0.2,
    "_auth_retry": 0.2,
    "_poll_interval": 0.05,
    "shutdown_timeout": 2.0,
}

BASE_ATTRS: dict[str, Any] = {
    semconv.GEN_AI_OPERATION_NAME: "chat",
    semconv.GEN_AI_PROVIDER_NAME: "openai",
    semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
    semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
    semconv.GEN_AI_USAGE_INPUT_TOKENS: 1200,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 300,
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

    def make(
        n: int = 1,
        scope: str = semconv.SCOPE_NAME,
        error: bool = False,
        service: str = "checkout-api",
        name: str = "chat gpt-4o-mini",
        **attributes: Any,
    ) -> list[ReadableSpan]:
        memory = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracer = provider.get_tracer(scope)
        attrs = {**BASE_ATTRS, **{k.replace("__", "."): v for k, v in attributes.items()}}
        attrs = {k: v for k, v in attrs.items() if v is not None}
        for _ in range(n):
            with tracer.start_as_current_span(name, attributes=attrs) as span:
                if error:
                    span.set_status(Status(StatusCode.ERROR))
        provider.shutdown()
        return list(memory.get_finished_spans())

    return make


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
