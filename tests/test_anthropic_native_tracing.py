"""The Anthropic SDK's own spans (scope ``com.anthropic.sdk.python``), on and off:
ours is their parent, there is one span of our scope per call either way, no customer
baggage reaches Anthropic, and the exporter bills each call exactly once.

The SDK takes its tracer provider from the client option
``open_telemetry={"tracer_provider": ...}`` (else the global one), which keeps
these tests independent of any global provider.
"""

from __future__ import annotations

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor, customer_context
from tests import test_anthropic_calls
from tests.test_anthropic_calls import (
    NATIVE_TRACING,
    SHAPES,
    USAGE,
    assert_usage,
    make_client,
    run_call,
    sdk_spans,
)

clients = test_anthropic_calls.clients  # the shared client fixture

needs_native_tracing = pytest.mark.skipif(
    not NATIVE_TRACING, reason="this anthropic SDK emits no spans of its own"
)


@needs_native_tracing
@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
async def test_native_tracing_on_nests_under_ours(
    flavour, shape, anthropic_server, clients, instrument, spans, span_exporter
):
    anthropic_server.configure(usage=USAGE, content=shape.content)

    await run_call(clients(flavour, native=True), "messages", shape)

    [ours] = spans()
    [native] = sdk_spans(span_exporter)
    assert native.name == "anthropic.messages.create"
    assert native.parent.span_id == ours.context.span_id
    assert native.context.trace_id == ours.context.trace_id
    assert_usage(dict(ours.attributes))
    # The SDK propagates its own span's context to Anthropic.
    traceparent = anthropic_server.last_request.headers["traceparent"]
    assert traceparent.split("-")[2] == f"{native.context.span_id:016x}"


@needs_native_tracing
@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
@pytest.mark.parametrize("switch", ["option", "env"])
async def test_native_tracing_off(
    flavour, shape, switch, anthropic_server, instrument, spans, span_exporter, monkeypatch
):
    anthropic_server.configure(usage=USAGE, content=shape.content)
    cls = anthropic.Anthropic if flavour == "sync" else anthropic.AsyncAnthropic
    options = {"base_url": anthropic_server.url, "api_key": "sk-ant-test", "max_retries": 0}
    if switch == "option":
        client = cls(**options, open_telemetry=False)
    else:
        monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
        client = cls(**options)
    assert client.open_telemetry["traces"]["enabled"] is False

    try:
        await run_call(client, "messages", shape)
    finally:
        close = client.close()
        if flavour == "async":
            await close

    [ours] = spans()
    assert sdk_spans(span_exporter) == []
    assert_usage(dict(ours.attributes))


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
async def test_customer_baggage_never_reaches_anthropic(
    flavour, shape, anthropic_server, clients, instrument, spans
):
    anthropic_server.configure(content=shape.content)

    with customer_context("cust-secret-9", plan="pro"):
        await run_call(clients(flavour, native=True), "messages", shape)

    [ours] = spans()
    assert ours.attributes["cmdrdata.customer_id"] == "cust-secret-9"
    headers = anthropic_server.last_request.headers
    assert "cust-secret-9" not in str(dict(headers))
    assert "cmdrdata" not in headers.get("baggage", "")


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_exporter_bills_each_call_once_with_native_tracing_on(
    flavour, anthropic_server, cmdrdata_server, tmp_path
):
    from cmdrdata_exporter import CmdrDataSpanExporter
    from tests.servers.cmdrdata_fixtures import TEST_API_KEY

    provider = TracerProvider()
    exporter = CmdrDataSpanExporter(
        api_key=TEST_API_KEY, endpoint=cmdrdata_server.url, spool_dir=str(tmp_path)
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=provider, providers=["anthropic"])
    anthropic_server.configure(usage=USAGE)
    client = make_client(anthropic_server, flavour, provider)
    calls = [(shape, mode) for shape in SHAPES for mode in shape.modes]
    try:
        with customer_context("cust-42"):
            for shape, mode in calls:
                anthropic_server.configure(usage=USAGE, content=shape.content)
                await run_call(client, "messages", shape, mode)
    finally:
        instrumentor.uninstrument()
        close = client.close()
        if flavour == "async":
            await close
        provider.shutdown()  # flushes the batch processor and the exporter

    assert cmdrdata_server.wait_for(len(calls), timeout=10)
    events = list(cmdrdata_server.events)
    assert len(events) == len(calls) == len(anthropic_server.requests)
    assert len({e["metadata"]["event_id"] for e in events}) == len(calls)
    for event in events:
        assert event["provider"] == "anthropic"
        assert event["customer_id"] == "cust-42"
        assert event["model"] == "claude-haiku-4-5-20251001"
        assert event["input_tokens"] == 1150
        assert event["output_tokens"] == 42
        assert event["metadata"]["cache_read_input_tokens"] == 1000
        assert event["metadata"]["cache_write_input_tokens"] == 50
