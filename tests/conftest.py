"""Shared fixtures: an SDK TracerProvider/MeterProvider with in-memory readers,
the instrumentor switched on for one test, and the local servers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor
from opentelemetry_instrumentation_cmdrdata.semconv import SCOPE_NAME

with contextlib.suppress(ImportError):
    from tests.servers.provider_fixtures import *  # noqa: F403
with contextlib.suppress(ImportError):
    from tests.servers.cmdrdata_fixtures import *  # noqa: F403


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(span_exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    return provider


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(metric_reader: InMemoryMetricReader) -> MeterProvider:
    return MeterProvider(metric_readers=[metric_reader])


@pytest.fixture
def instrument(
    tracer_provider: TracerProvider, meter_provider: MeterProvider
) -> Iterator[CmdrDataInstrumentor]:
    """The instrumentor, on for this test only."""
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


def our_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """The finished spans of our instrumentation scope, oldest first."""
    return [
        span
        for span in exporter.get_finished_spans()
        if span.instrumentation_scope is not None and span.instrumentation_scope.name == SCOPE_NAME
    ]


@pytest.fixture
def spans(span_exporter: InMemorySpanExporter):
    """Call ``spans()`` to get our scope's finished spans so far."""
    return lambda: our_spans(span_exporter)


@pytest.fixture
def make_openai_client(openai_server):
    """``make_openai_client("sync" | "async")``: a real SDK client aimed at the fake."""
    import openai

    clients = []

    def make(flavour: str = "sync", **options):
        cls = openai.OpenAI if flavour == "sync" else openai.AsyncOpenAI
        client = cls(
            base_url=openai_server.url + "/v1", api_key="sk-test", max_retries=0, **options
        )
        clients.append(client)
        return client

    return make
