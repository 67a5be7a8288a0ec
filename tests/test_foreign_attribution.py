"""The customer on foreign spans (issue #18, SPEC §11): in ``genai`` mode ``instrument()``'s span
processor copies the verified customer and metadata from baggage onto spans other
instrumentations start, never onto ours and never over a customer a span already has.

Real spans on a real SDK TracerProvider, a real OpenAI SDK call against the local fake, and a
real ``CmdrDataSpanExporter`` delivering to the fake cmdrdata server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cmdrdata_exporter import CmdrDataSpanExporter
from cmdrdata_exporter.config import resolve
from cmdrdata_exporter.events import span_to_event
from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor, customer_context
from opentelemetry_instrumentation_cmdrdata import customer as customer_module
from opentelemetry_instrumentation_cmdrdata.semconv import (
    CMDRDATA_CUSTOMER_ID,
    CMDRDATA_METADATA_PREFIX,
    SCOPE_NAME,
)
from tests.servers.cmdrdata_fixtures import TEST_API_KEY

FOREIGN_SCOPE = "opentelemetry.instrumentation.openai.v2"  # as the official one names it
FOREIGN_CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.id": "chatcmpl-foreign-1",
    "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.output_tokens": 30,
}
SECRET = "test-baggage-secret-18"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CMDRDATA_SPAN_SOURCE", raising=False)
    monkeypatch.delenv(customer_module.SECRET_ENV, raising=False)
    customer_module._reload_settings()
    yield
    monkeypatch.delenv(customer_module.SECRET_ENV, raising=False)
    customer_module._reload_settings()


class Instrumentation:
    """``instrument()`` with ``CMDRDATA_SPAN_SOURCE`` as given, undone after the test."""

    def __init__(
        self, provider: TracerProvider, meters: MeterProvider, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.provider = provider
        self.meters = meters
        self.monkeypatch = monkeypatch
        self.instrumentor = CmdrDataInstrumentor()

    def on(self, span_source: str | None) -> None:
        if span_source is None:
            self.monkeypatch.delenv("CMDRDATA_SPAN_SOURCE", raising=False)
        else:
            self.monkeypatch.setenv("CMDRDATA_SPAN_SOURCE", span_source)
        self.instrumentor.instrument(tracer_provider=self.provider, meter_provider=self.meters)

    def off(self) -> None:
        self.instrumentor.uninstrument()


@pytest.fixture
def instrumentation(tracer_provider, meter_provider, monkeypatch) -> Iterator[Instrumentation]:
    made = Instrumentation(tracer_provider, meter_provider, monkeypatch)
    try:
        yield made
    finally:
        made.off()


def foreign_span(
    provider: TracerProvider, memory: InMemorySpanExporter, **extra: Any
) -> ReadableSpan:
    """A GenAI span another instrumentation starts (and ends) in the current context."""
    before = len(memory.get_finished_spans())
    tracer = provider.get_tracer(FOREIGN_SCOPE, "2.1b0")
    with tracer.start_as_current_span("chat gpt-4o-mini", attributes={**FOREIGN_CALL, **extra}):
        pass
    return memory.get_finished_spans()[before]


def attribution(span: ReadableSpan) -> tuple[Any, dict[str, Any]]:
    attrs = span.attributes or {}
    start = len(CMDRDATA_METADATA_PREFIX)
    metadata = {k[start:]: v for k, v in attrs.items() if k.startswith(CMDRDATA_METADATA_PREFIX)}
    return attrs.get(CMDRDATA_CUSTOMER_ID), metadata


def with_baggage(value: str, **entries: str):
    ctx = baggage.set_baggage(CMDRDATA_CUSTOMER_ID, value)
    for key, item in entries.items():
        ctx = baggage.set_baggage(CMDRDATA_METADATA_PREFIX + key, item, ctx)
    return otel_context.attach(ctx)


def deliver(spans: list[ReadableSpan], server: Any, spool_dir: Path) -> list[dict[str, Any]]:
    """Bill ``spans`` with a real genai-mode exporter; the events cmdrdata received."""
    exporter = CmdrDataSpanExporter(
        api_key=TEST_API_KEY,
        endpoint=server.url,
        spool_dir=str(spool_dir),
        span_source="genai",
        foreign_hold=0.2,
        bill_unsampled=False,
        _poll_interval=0.05,
    )
    try:
        exporter.export(spans)
        assert server.wait_for(1, timeout=10)
        time.sleep(0.6)  # past the hold: a second event would have gone out by now
        exporter.force_flush(2000)
    finally:
        exporter.shutdown(timeout_millis=2000)
    return list(server.events)


def test_a_foreign_span_in_customer_context_is_billed_to_that_customer(
    instrumentation, tracer_provider, span_exporter, cmdrdata_server, tmp_path
):
    instrumentation.on("genai")
    with customer_context("cust-7", plan="pro"):
        span = foreign_span(tracer_provider, span_exporter)
    assert attribution(span) == ("cust-7", {"plan": "pro"})

    event = span_to_event(span, resolve({"span_source": "genai"}, {}))
    assert event is not None
    assert (event["customer_id"], event["metadata"]["plan"]) == ("cust-7", "pro")

    (delivered,) = deliver([span], cmdrdata_server, tmp_path / "spool")
    assert delivered["customer_id"] == "cust-7"
    assert delivered["metadata"]["plan"] == "pro"
    assert delivered["input_tokens"] == 120


def test_a_customer_the_foreign_span_already_has_is_kept(
    instrumentation, tracer_provider, span_exporter
):
    instrumentation.on(" GenAI ")  # read as the exporter reads it: trimmed, any case
    with customer_context("cust-7", plan="pro", tier="gold"):
        theirs = foreign_span(
            tracer_provider,
            span_exporter,
            **{CMDRDATA_CUSTOMER_ID: "their-customer", CMDRDATA_METADATA_PREFIX + "plan": "x"},
        )
        partial = foreign_span(
            tracer_provider, span_exporter, **{CMDRDATA_METADATA_PREFIX + "plan": "own"}
        )
    assert attribution(theirs) == ("their-customer", {"plan": "x"})  # nothing copied
    assert attribution(partial) == ("cust-7", {"plan": "own", "tier": "gold"})


def test_with_the_secret_only_signed_baggage_reaches_a_foreign_span(
    instrumentation, tracer_provider, span_exporter, monkeypatch
):
    monkeypatch.setenv(customer_module.SECRET_ENV, SECRET)
    instrumentation.on("genai")  # reads the secret
    with customer_context("cust-7", plan="pro"):
        signed = foreign_span(tracer_provider, span_exporter)
    forged_entries = {
        "unsigned": "cust-evil",
        "forged": "cust-evil;cmdrdata.sig=v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAA",
    }
    got = {}
    for name, value in forged_entries.items():
        token = with_baggage(value, plan="enterprise")
        try:
            got[name] = attribution(foreign_span(tracer_provider, span_exporter))
        finally:
            otel_context.detach(token)
    assert attribution(signed) == ("cust-7", {"plan": "pro"})
    assert got == {"unsigned": (None, {}), "forged": (None, {})}


def test_our_span_keeps_its_per_call_customer_and_is_the_one_billed(
    instrumentation,
    tracer_provider,
    span_exporter,
    make_openai_client,
    cmdrdata_server,
    tmp_path,
):
    """An official-style span around our real OpenAI call: it gets the baggage customer, ours
    keeps the per-call one (and an invalid per-call id stays unattributed), and the call is
    billed once, to the per-call customer."""
    instrumentation.on("genai")
    client = make_openai_client()
    tracer = tracer_provider.get_tracer(FOREIGN_SCOPE)
    messages = [{"role": "user", "content": "hello"}]
    with customer_context("cust-bag", plan="pro"):
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes=FOREIGN_CALL):
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=messages,
                customer_id="cust-call",
                cmdrdata_metadata={"feature": "x"},
            )
        client.chat.completions.create(model="m-bad-id", messages=messages, customer_id=" ")
    finished = span_exporter.get_finished_spans()
    ours = [s for s in finished if s.instrumentation_scope.name == SCOPE_NAME]
    (theirs,) = [s for s in finished if s.instrumentation_scope.name == FOREIGN_SCOPE]
    assert attribution(theirs) == ("cust-bag", {"plan": "pro"})
    assert [attribution(s) for s in ours] == [("cust-call", {"feature": "x"}), (None, {})]

    (event,) = deliver([ours[0], theirs], cmdrdata_server, tmp_path / "spool")
    assert event["customer_id"] == "cust-call"
    assert event["metadata"]["feature"] == "x"
    assert "plan" not in event["metadata"]


def test_only_genai_mode_copies(instrumentation, tracer_provider, span_exporter):
    got = []
    for span_source in (None, "instrumentor", "genai", "bogus"):
        instrumentation.on(span_source)
        with customer_context("cust-7", plan="pro"):
            got.append(attribution(foreign_span(tracer_provider, span_exporter)))
        instrumentation.off()
    assert got == [(None, {}), (None, {}), ("cust-7", {"plan": "pro"}), (None, {})]


def test_nothing_is_copied_after_uninstrument(instrumentation, tracer_provider, span_exporter):
    instrumentation.on("genai")
    with customer_context("cust-7"):
        before = foreign_span(tracer_provider, span_exporter)
        instrumentation.off()
        after = foreign_span(tracer_provider, span_exporter)
    assert attribution(before) == ("cust-7", {})
    assert attribution(after) == (None, {})


def test_a_span_started_without_baggage_gets_nothing(
    instrumentation, tracer_provider, span_exporter
):
    instrumentation.on("genai")
    span = foreign_span(tracer_provider, span_exporter)
    with customer_context("cust-7"):
        inside = foreign_span(tracer_provider, span_exporter)
    assert attribution(span) == (None, {})
    assert attribution(inside) == ("cust-7", {})
