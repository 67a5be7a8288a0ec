"""Zero-code set-up: ``opentelemetry-instrument python app.py`` with an app that has no
OpenTelemetry code, in a subprocess, with the real distro and OTLP/HTTP exporter.

The happy path bills every call at the local cmdrdata and sends the very same spans to an OTLP
backend. The traps (SPEC §2, README "Troubleshooting") are shown as they really behave: each
leaves the app running, and says so in its log.

The test with another OpenAI instrumentation beside ours needs a package that is not in the
``test`` extra (it would add a second span to every call in every other subprocess test). Run it
in a throwaway venv, with the official one or with OpenLLMetry's::

    python3 -m venv /tmp/venv-official
    /tmp/venv-official/bin/pip install -e '.[test]' opentelemetry-instrumentation-genai-openai
    /tmp/venv-official/bin/python -m pytest tests/test_auto_instrumentation.py -k another
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from opentelemetry_instrumentation_cmdrdata.semconv import SCOPE_NAME
from tests.collector import rotel as collector_fixtures
from tests.collector.apps import (
    PLAIN_APP,
    app_results,
    clean_env,
    run_instrumented,
    spool_status,
)
from tests.collector.otlp_receiver import ReceivedSpan
from tests.servers.anthropic_server import AnthropicUsage
from tests.servers.cmdrdata_server import TEST_API_KEY, CmdrDataServer
from tests.servers.gemini_server import GeminiUsage
from tests.servers.openai_server import OpenAIUsage


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def traces_the_openai_http_client() -> bool:
    """Whether opentelemetry-instrument makes spans of the OpenAI SDK's HTTP requests: openai
    3.x sends them through httpx2, which opentelemetry-instrumentation-httpx < 0.65b0 (with
    the OpenTelemetry floor) does not instrument."""
    if not installed("opentelemetry.instrumentation.httpx"):
        return False
    if int(importlib.metadata.version("openai").split(".")[0]) < 3:
        return True
    import opentelemetry.instrumentation.httpx as httpx_instrumentation

    return hasattr(httpx_instrumentation, "HTTPX2ClientInstrumentor")


pytestmark = pytest.mark.skipif(
    not installed("opentelemetry.distro")
    or not installed("opentelemetry.exporter.otlp.proto.http"),
    reason="needs opentelemetry-distro and opentelemetry-exporter-otlp-proto-http (test extra)",
)

otlp_receiver = collector_fixtures.otlp_receiver  # the fixture

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TROUBLESHOOTING = ROOT / "docs" / "troubleshooting.md"


def ours(span: ReceivedSpan) -> bool:
    return span.scope == SCOPE_NAME


def auto_env(cmdrdata: CmdrDataServer, spool_dir: Path, **values: str) -> dict[str, str]:
    """What a user exports: the cmdrdata key and endpoint, plus ``values``."""
    return clean_env(
        CMDRDATA_API_KEY=TEST_API_KEY,
        CMDRDATA_ENDPOINT=cmdrdata.url,
        CMDRDATA_SPOOL_DIR=str(spool_dir),
        OTEL_SERVICE_NAME="checkout-api",
        **values,
    )


def openai_only(openai_server) -> dict[str, str]:
    return {"OPENAI_BASE_URL": openai_server.url + "/v1", "OPENAI_API_KEY": "sk-test"}


def assert_app_ran_uninstrumented(completed: subprocess.CompletedProcess[str]) -> None:
    """The app did its work (both OpenAI calls answered) though nothing was instrumented."""
    results = app_results(completed)
    assert [r["customer"] for r in results] == ["acme-corp", "globex@example.com"]


def test_every_call_is_billed_once_and_the_same_spans_reach_otlp(
    openai_server, anthropic_server, gemini_server, cmdrdata_server, otlp_receiver, tmp_path
):
    openai_server.configure(usage=OpenAIUsage(prompt_tokens=1200, completion_tokens=300))
    anthropic_server.configure(usage=AnthropicUsage(input_tokens=800, output_tokens=120))
    gemini_server.configure(usage=GeminiUsage(prompt_token_count=640, candidates_token_count=64))
    env = auto_env(
        cmdrdata_server,
        tmp_path,
        OTEL_TRACES_EXPORTER="otlp,cmdrdata",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url,
        ANTHROPIC_BASE_URL=anthropic_server.url,
        ANTHROPIC_API_KEY="sk-ant-test",
        GOOGLE_GEMINI_BASE_URL=gemini_server.url,
        GOOGLE_API_KEY="test-key",
        **openai_only(openai_server),
    )

    results = app_results(run_instrumented(PLAIN_APP, env))

    # What the app saw: the real answers, and no usage chunk it did not ask for.
    assert [r["customer"] for r in results] == [
        "acme-corp",
        "globex@example.com",
        "initech",
        "umbrella",
    ]
    assert results[1]["usage_chunks_seen_by_app"] == 0

    # cmdrdata: exactly one event per call, with the exact tokens and customer.
    assert cmdrdata_server.wait_for(4, timeout=20), spool_status(env)
    events = {event["metadata"]["response_id"]: event for event in cmdrdata_server.events}
    assert len(cmdrdata_server.events) == 4 == len(events)
    expected_tokens = {"openai": (1200, 300), "anthropic": (800, 120), "google": (640, 64)}
    for result in results:
        event = events[result["response_id"]]
        assert event["customer_id"] == result["customer"]
        assert event["provider"] == result["provider"]
        assert (event["input_tokens"], event["output_tokens"]) == expected_tokens[
            result["provider"]
        ]
        assert event["metadata"]["service_name"] == "checkout-api"
    assert events[results[0]["response_id"]]["metadata"]["plan"] == "pro"
    assert events[results[1]["response_id"]]["metadata"]["streaming"] is True

    # OTLP: the same four calls as GenAI spans, carrying the same ids and attributes.
    spans = otlp_receiver.wait_for_spans(ours, count=4)
    assert len(spans) == 4, spans
    by_span_id = {span.span_id: span for span in spans}
    for event in cmdrdata_server.events:
        span = by_span_id[event["metadata"]["span_id"]]
        assert span.trace_id == event["metadata"]["trace_id"]
        assert span.kind == 3  # CLIENT
        assert span.attributes["gen_ai.response.id"] == event["metadata"]["response_id"]
        assert span.attributes["cmdrdata.customer_id"] == event["customer_id"]
        assert span.attributes["gen_ai.usage.input_tokens"] == event["input_tokens"]
        assert span.attributes["gen_ai.usage.output_tokens"] == event["output_tokens"]
        assert span.resource["service.name"] == "checkout-api"
    assert otlp_receiver.errors == []


def test_distro_default_grpc_without_the_grpc_exporter_turns_opentelemetry_off(
    openai_server, cmdrdata_server, otlp_receiver, tmp_path
):
    """opentelemetry-distro sets OTEL_EXPORTER_OTLP_PROTOCOL=grpc unless told otherwise; with
    only the HTTP exporter installed the whole auto set-up fails. The app runs, unbilled."""
    env = auto_env(
        cmdrdata_server,
        tmp_path,
        OTEL_TRACES_EXPORTER="otlp,cmdrdata",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url,
        **openai_only(openai_server),
    )

    completed = run_instrumented(PLAIN_APP, env)

    assert_app_ran_uninstrumented(completed)
    assert "Failed to auto initialize OpenTelemetry" in completed.stderr
    assert "Requested component 'otlp_proto_grpc' not found" in completed.stderr
    assert cmdrdata_server.events == []
    assert otlp_receiver.spans == []
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf" in README.read_text()
    troubleshooting = TROUBLESHOOTING.read_text()
    assert "otlp_proto_grpc" in troubleshooting
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf" in troubleshooting


def test_cmdrdata_alone_still_needs_metrics_and_logs_exporters_settled(
    openai_server, cmdrdata_server, tmp_path
):
    """OTEL_TRACES_EXPORTER=cmdrdata alone is not enough under the distro: metrics and logs
    still default to OTLP over gRPC, and that failure turns tracing off too. The fix,
    ``OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none``, is what
    ``tests/test_examples.py::test_auto_instrument_app`` runs with."""
    env = auto_env(cmdrdata_server, tmp_path, OTEL_TRACES_EXPORTER="cmdrdata")
    env.update(openai_only(openai_server))

    completed = run_instrumented(PLAIN_APP, env)

    assert_app_ran_uninstrumented(completed)
    assert "Failed to auto initialize OpenTelemetry" in completed.stderr
    assert (
        "Requested component 'otlp_proto_grpc' not found in entry point "
        "'opentelemetry_metrics_exporter'" in completed.stderr
    )
    assert cmdrdata_server.events == []


def test_a_misspelt_exporter_name_turns_all_of_opentelemetry_off(
    openai_server, cmdrdata_server, otlp_receiver, tmp_path
):
    env = auto_env(
        cmdrdata_server,
        tmp_path,
        OTEL_TRACES_EXPORTER="otlp,cmdrdta",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url,
        **openai_only(openai_server),
    )

    completed = run_instrumented(PLAIN_APP, env)

    assert_app_ran_uninstrumented(completed)
    assert "Failed to auto initialize OpenTelemetry" in completed.stderr
    assert "Requested component 'cmdrdta' not found" in completed.stderr
    # Not only billing: the correctly named OTLP exporter gets nothing either.
    assert cmdrdata_server.events == []
    assert otlp_receiver.spans == []
    assert "typo in `OTEL_TRACES_EXPORTER`" in TROUBLESHOOTING.read_text()


def test_disabling_our_instrumentation_by_name_stops_billing_only(
    openai_server, cmdrdata_server, otlp_receiver, tmp_path
):
    env = auto_env(
        cmdrdata_server,
        tmp_path,
        OTEL_TRACES_EXPORTER="otlp,cmdrdata",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url,
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="cmdrdata",
        **openai_only(openai_server),
    )

    completed = run_instrumented(PLAIN_APP, env)

    assert_app_ran_uninstrumented(completed)
    assert "Failed to auto initialize" not in completed.stderr
    assert cmdrdata_server.events == []
    # The rest of OpenTelemetry is on: the exporters ran (HTTP client spans, when
    # opentelemetry-instrumentation-httpx is installed, reached the collector); ours made none.
    assert not [span for span in otlp_receiver.spans if ours(span)]
    if traces_the_openai_http_client():
        http_spans = otlp_receiver.wait_for_spans(lambda s: s.name == "POST", count=2)
        assert len(http_spans) >= 2, otlp_receiver.spans


def test_opentelemetry_instrument_help_offers_the_exporter_flag():
    """We expose no OTEL_* options of our own (ours are CMDRDATA_*, which the launcher never
    turns into flags); the standard flags are what users need, and they work with our names."""
    from tests.collector.apps import opentelemetry_instrument

    completed = subprocess.run(
        [opentelemetry_instrument(), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    for flag in ("--traces_exporter", "--exporter_otlp_protocol", "--disabled_instrumentations"):
        assert flag in completed.stdout
    assert "cmdrdata" not in completed.stdout.lower()


def other_openai_instrumentations() -> list[str]:
    """Installed ``opentelemetry_instrumentor`` entry points named ``openai`` (the official
    genai-openai / openai-v2 packages and OpenLLMetry all use that name)."""
    return [
        entry_point.value
        for entry_point in entry_points(group="opentelemetry_instrumentor")
        if entry_point.name == "openai"
    ]


@pytest.mark.skipif(
    not other_openai_instrumentations(),
    reason=(
        "needs another OpenAI instrumentation (e.g. opentelemetry-instrumentation-genai-openai), "
        "kept out of the test extra; see this module's docstring for the command"
    ),
)
def test_another_openai_instrumentation_beside_ours_gives_two_spans_but_one_event(
    openai_server, cmdrdata_server, otlp_receiver, tmp_path
):
    openai_server.configure(usage=OpenAIUsage(prompt_tokens=1200, completion_tokens=300))
    env = auto_env(
        cmdrdata_server,
        tmp_path,
        OTEL_TRACES_EXPORTER="otlp,cmdrdata",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url,
        **openai_only(openai_server),
    )

    results = app_results(run_instrumented(PLAIN_APP, env))

    def genai(span: ReceivedSpan) -> bool:
        return span.kind == 3 and any(key.startswith("gen_ai.") for key in span.attributes)

    genai_spans = otlp_receiver.wait_for_spans(genai, count=4)
    scopes = sorted(span.scope for span in genai_spans)
    assert len(genai_spans) == 4, scopes  # two calls, two GenAI spans each
    assert scopes.count(SCOPE_NAME) == 2
    assert cmdrdata_server.wait_for(2, timeout=20)
    assert len(cmdrdata_server.events) == 2
    assert sorted(e["customer_id"] for e in cmdrdata_server.events) == sorted(
        r["customer"] for r in results
    )
    assert {e["input_tokens"] for e in cmdrdata_server.events} == {1200}


METRICS_APP = """
import time

import openai
from opentelemetry import metrics, trace

from opentelemetry_instrumentation_cmdrdata import customer_context

client = openai.OpenAI(max_retries=0)
with customer_context("acme-corp"):
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
trace.get_tracer_provider().force_flush()
time.sleep(1.5)  # the sender delivers to the local server meanwhile
metrics.get_meter_provider().force_flush()
"""


def test_the_exporters_own_metrics_reach_the_distros_meter_provider(
    openai_server, cmdrdata_server, tmp_path
):
    """SPEC section 13 under opentelemetry-instrument: the distro's MeterProvider, set up
    around our exporter, receives the exporter's metrics (printed by the console exporter)."""
    app = tmp_path / "metrics_app.py"
    app.write_text(METRICS_APP)
    env = auto_env(
        cmdrdata_server,
        tmp_path / "spool",
        OTEL_TRACES_EXPORTER="cmdrdata",
        OTEL_METRICS_EXPORTER="console",
        OTEL_LOGS_EXPORTER="none",
        OTEL_METRIC_EXPORT_INTERVAL="60000",
        **openai_only(openai_server),
    )
    completed = run_instrumented(app, env)
    assert completed.returncode == 0, completed.stderr
    assert cmdrdata_server.wait_for(1, timeout=20), spool_status(env)
    printed = completed.stdout
    assert '"name": "cmdrdata_exporter"' in printed  # the exporter's instrumentation scope
    for name in (
        "cmdrdata.exporter.events.queued",
        "cmdrdata.exporter.events.delivered",
        "cmdrdata.exporter.delivery.duration",
        "cmdrdata.exporter.paused",
    ):
        assert f'"name": "{name}"' in printed, name
    assert "acme-corp" not in printed and TEST_API_KEY not in printed  # never an attribute
