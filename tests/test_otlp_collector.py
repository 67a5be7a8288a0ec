"""A real collector in the path: app -> rotel (OTLP in) -> a local OTLP backend, while the
cmdrdata exporter in the same process bills each call at the local cmdrdata.

The app has no OpenTelemetry code and runs under ``opentelemetry-instrument`` exactly as a user
would run it; rotel is started and stopped by the ``rotel_collector`` fixture.
"""

from __future__ import annotations

import pytest

from opentelemetry_instrumentation_cmdrdata.semconv import SCOPE_NAME
from tests.collector import rotel as collector_fixtures
from tests.collector.apps import PLAIN_APP, app_results, clean_env, run_instrumented, spool_status
from tests.collector.rotel import RotelCollector
from tests.servers.anthropic_server import AnthropicUsage
from tests.servers.cmdrdata_server import TEST_API_KEY
from tests.servers.openai_server import OpenAIUsage

pytest.importorskip("opentelemetry.distro", reason="needs opentelemetry-distro (test extra)")
pytest.importorskip(
    "opentelemetry.exporter.otlp.proto.http",
    reason="needs opentelemetry-exporter-otlp-proto-http (test extra)",
)

# The fixtures: rotel in front of a local OTLP backend.
otlp_receiver = collector_fixtures.otlp_receiver
rotel_collector = collector_fixtures.rotel_collector


def test_genai_spans_cross_a_real_collector_while_cmdrdata_bills_each_call(
    openai_server, anthropic_server, cmdrdata_server, rotel_collector: RotelCollector, tmp_path
):
    openai_server.configure(
        usage=OpenAIUsage(prompt_tokens=1500, completion_tokens=250, cached_tokens=1000)
    )
    anthropic_server.configure(
        usage=AnthropicUsage(input_tokens=90, output_tokens=40, cache_read_input_tokens=900)
    )
    env = clean_env(
        OTEL_SERVICE_NAME="support-bot",
        OTEL_TRACES_EXPORTER="otlp,cmdrdata",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=rotel_collector.http_endpoint,
        CMDRDATA_API_KEY=TEST_API_KEY,
        CMDRDATA_ENDPOINT=cmdrdata_server.url,
        CMDRDATA_SPOOL_DIR=str(tmp_path / "spool"),
        OPENAI_BASE_URL=openai_server.url + "/v1",
        OPENAI_API_KEY="sk-test",
        ANTHROPIC_BASE_URL=anthropic_server.url,
        ANTHROPIC_API_KEY="sk-ant-test",
    )

    results = app_results(run_instrumented(PLAIN_APP, env))
    assert [r["customer"] for r in results] == ["acme-corp", "globex@example.com", "initech"]

    receiver = rotel_collector.receiver
    spans = receiver.wait_for_spans(lambda span: span.scope == SCOPE_NAME, count=3)
    assert len(spans) == 3, f"{receiver.spans}\nrotel said:\n{rotel_collector.log()}"
    assert receiver.errors == []
    by_response = {span.attributes["gen_ai.response.id"]: span for span in spans}
    acme, globex, initech = (by_response[r["response_id"]] for r in results)

    assert acme.name == "chat gpt-4o-mini"
    assert acme.resource["service.name"] == "support-bot"
    assert acme.attributes["gen_ai.operation.name"] == "chat"
    assert acme.attributes["gen_ai.provider.name"] == "openai"
    assert acme.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert acme.attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert acme.attributes["gen_ai.usage.input_tokens"] == 1500
    assert acme.attributes["gen_ai.usage.output_tokens"] == 250
    assert acme.attributes["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert acme.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert acme.attributes["cmdrdata.customer_id"] == "acme-corp"
    assert acme.attributes["cmdrdata.metadata.plan"] == "pro"
    assert acme.attributes["server.address"] == "127.0.0.1"

    assert globex.attributes["gen_ai.request.stream"] is True
    assert globex.attributes["gen_ai.usage.input_tokens"] == 1500
    assert globex.attributes["cmdrdata.customer_id"] == "globex@example.com"

    assert initech.attributes["gen_ai.provider.name"] == "anthropic"
    assert initech.attributes["gen_ai.usage.input_tokens"] == 990  # cache reads included
    assert initech.attributes["gen_ai.usage.cache_read.input_tokens"] == 900
    assert initech.attributes["cmdrdata.customer_id"] == "initech"

    # No prompt or completion text ever leaves in a span.
    for span in spans:
        assert not any("Summarise" in str(value) for value in span.attributes.values())

    # Meanwhile cmdrdata got one event per call, for the same spans.
    assert cmdrdata_server.wait_for(3, timeout=20), spool_status(env)
    assert len(cmdrdata_server.events) == 3
    billed = {
        event["metadata"]["span_id"]: (event["customer_id"], event["input_tokens"])
        for event in cmdrdata_server.events
    }
    assert billed == {
        acme.span_id: ("acme-corp", 1500),
        globex.span_id: ("globex@example.com", 1500),
        initech.span_id: ("initech", 990),
    }
