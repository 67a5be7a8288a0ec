"""Billing does not depend on tracing budgets (SPEC §8): samplers and full span queues drop
spans, never billing events; and the dropped spans still never reach the other exporters."""

from __future__ import annotations

import time

import httpx2
import openai
import pytest
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased

from cmdrdata_exporter import CmdrDataSpanExporter
from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor
from tests.servers.cmdrdata_server import TEST_API_KEY

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT_REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}


def in_process_client() -> openai.OpenAI:
    """A real SDK client on an in-process transport: thousands of calls in seconds."""
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=CHAT_REPLY))
    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://127.0.0.1:9/v1",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
    )


@pytest.fixture
def billing(cmdrdata_server, tmp_path):
    """A CmdrDataSpanExporter aimed at the local cmdrdata server; shut down after the test."""
    exporters = []

    def make(**overrides):
        exporter = CmdrDataSpanExporter(
            api_key=TEST_API_KEY,
            endpoint=cmdrdata_server.url,
            spool_dir=tmp_path / f"spool{len(exporters)}",
            **overrides,
        )
        exporters.append(exporter)
        return exporter

    yield make
    for exporter in exporters:
        exporter.shutdown(timeout_millis=2000)


def run_instrumented(provider, calls, client=None, parent_context=None):
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    token = otel_context.attach(parent_context) if parent_context is not None else None
    try:
        client = client or in_process_client()
        for _ in range(calls):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        if token is not None:
            otel_context.detach(token)
        instrumentor.uninstrument()


def wait_delivered(exporter, server, expected, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exporter.force_flush(timeout_millis=2000)
        if len(set(server.event_ids())) >= expected:
            break
    return server.event_ids()


def test_ratio_sampler_bills_every_call_while_otlp_sees_a_tenth(billing, cmdrdata_server):
    otlp = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.1)))
    provider.add_span_processor(SimpleSpanProcessor(otlp))
    exporter = billing()
    provider.add_span_processor(BatchSpanProcessor(exporter))

    run_instrumented(provider, 1000)
    provider.force_flush()

    ids = wait_delivered(exporter, cmdrdata_server, 1000)
    assert len(ids) == 1000 and len(set(ids)) == 1000
    assert 50 <= len(otlp.get_finished_spans()) <= 170  # about 10% of traces
    events = cmdrdata_server.events
    assert {e["input_tokens"] for e in events} == {5}
    sampled_trace_ids = {format(s.context.trace_id, "032x") for s in otlp.get_finished_spans()}
    billed_trace_ids = {e["metadata"]["trace_id"] for e in events}
    assert sampled_trace_ids <= billed_trace_ids  # each event carries its call's own trace id
    provider.shutdown()


def test_unsampled_inbound_traceparent_is_still_billed(billing, cmdrdata_server):
    otlp = InMemorySpanExporter()
    provider = TracerProvider()  # default: parentbased_always_on
    provider.add_span_processor(SimpleSpanProcessor(otlp))
    exporter = billing()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    inbound = propagate.extract(
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}
    )

    run_instrumented(provider, 3, parent_context=inbound)

    ids = wait_delivered(exporter, cmdrdata_server, 3)
    assert len(ids) == 3
    assert otlp.get_finished_spans() == ()
    assert {e["metadata"]["trace_id"] for e in cmdrdata_server.events} == {
        "0af7651916cd43dd8448eb211c80319c"
    }
    provider.shutdown()


def test_always_off_sampler_still_bills(billing, cmdrdata_server):
    otlp = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(otlp))
    exporter = billing()
    provider.add_span_processor(BatchSpanProcessor(exporter))

    run_instrumented(provider, 5)

    assert len(wait_delivered(exporter, cmdrdata_server, 5)) == 5
    assert otlp.get_finished_spans() == ()
    event = cmdrdata_server.events[0]
    assert event["customer_id"] == "unattributed"
    assert event["metadata"]["service_name"]  # the provider's resource
    assert len(event["metadata"]["span_id"]) == 16
    provider.shutdown()


def test_bill_unsampled_false_turns_it_off(billing, cmdrdata_server):
    provider = TracerProvider(sampler=ALWAYS_OFF)
    exporter = billing(bill_unsampled=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    run_instrumented(provider, 3)
    exporter.force_flush(timeout_millis=2000)
    assert cmdrdata_server.event_ids() == []
    provider.shutdown()


@pytest.mark.parametrize("processor", [SimpleSpanProcessor, BatchSpanProcessor])
def test_sampled_calls_are_billed_exactly_once(processor, billing, cmdrdata_server):
    """The direct path and the span pipeline both reach the exporter: one event per call."""
    provider = TracerProvider()
    exporter = billing()
    provider.add_span_processor(processor(exporter))
    run_instrumented(provider, 20)
    provider.force_flush()
    ids = wait_delivered(exporter, cmdrdata_server, 20)
    time.sleep(0.3)
    exporter.force_flush(timeout_millis=2000)
    assert len(cmdrdata_server.event_ids()) == 20 == len(set(ids))
    assert cmdrdata_server.duplicates == 0
    provider.shutdown()


class _SlowCollector(SpanExporter):
    """An OTLP stand-in slow enough that BatchSpanProcessor's queue overflows."""

    def __init__(self):
        self.received = 0

    def export(self, spans):
        time.sleep(2.0)
        self.received += len(spans)
        return SpanExportResult.SUCCESS


@pytest.mark.slow
def test_burst_of_20000_calls_is_billed_in_full(billing, cmdrdata_server):
    collector = _SlowCollector()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(collector))  # default queue: 2048 spans
    exporter = billing()
    provider.add_span_processor(BatchSpanProcessor(exporter))

    run_instrumented(provider, 20_000)

    ids = wait_delivered(exporter, cmdrdata_server, 20_000, timeout=120)
    assert len(ids) == 20_000 == len(set(ids))
    provider.shutdown()
    assert collector.received < 20_000, "the span queue did not overflow: not a burst"
