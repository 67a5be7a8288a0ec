"""A Gemini call, end to end: SDK -> span -> CmdrDataSpanExporter -> the local cmdrdata server."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor, customer_context
from tests.servers.gemini_server import GeminiUsage

exporter_module = pytest.importorskip("cmdrdata_exporter")
cmdrdata_fixtures = pytest.importorskip("tests.servers.cmdrdata_fixtures")


@pytest.fixture
def billed_provider(monkeypatch, tmp_path, cmdrdata_server):
    """A TracerProvider whose spans are billed to the local cmdrdata server."""
    for name in ("CMDRDATA_SPAN_SOURCE", "CMDRDATA_DISABLED", "CMDRDATA_DEFAULT_CUSTOMER_ID"):
        monkeypatch.delenv(name, raising=False)
    exporter = exporter_module.CmdrDataSpanExporter(
        api_key=cmdrdata_fixtures.TEST_API_KEY,
        endpoint=cmdrdata_server.url,
        spool_dir=str(tmp_path / "spool"),
        timeout=2,
    )
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=provider, providers=["google_genai"])
    try:
        yield provider
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


def test_gemini_call_becomes_one_google_event(gemini_server, cmdrdata_server, billed_provider):
    gemini_server.next(
        usage=GeminiUsage(
            prompt_token_count=100,
            candidates_token_count=40,
            thoughts_token_count=25,
            cached_content_token_count=60,
        ),
        model="gemini-2.5-flash-001",
        response_id="resp-event-1",
    )
    client = gemini_server.client()
    with customer_context("cust-42", plan="pro"):
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    billed_provider.force_flush()

    assert cmdrdata_server.wait_for(1, timeout=10)
    [event] = cmdrdata_server.events
    assert event["provider"] == "google"
    assert event["customer_id"] == "cust-42"
    assert event["model"] == "gemini-2.5-flash-001"
    assert (event["input_tokens"], event["output_tokens"], event["total_tokens"]) == (100, 65, 165)
    metadata = event["metadata"]
    assert metadata["provider_name"] == "gcp.gemini"
    assert metadata["operation"] == "generate_content"
    assert metadata["request_model"] == "gemini-2.5-flash"
    assert metadata["response_id"] == "resp-event-1"
    assert metadata["cache_read_input_tokens"] == 60
    assert metadata["reasoning_output_tokens"] == 25
    assert metadata["finish_reasons"] == ["STOP"]
    assert metadata["streaming"] is False
    assert metadata["plan"] == "pro"
