"""Billing the spans of other GenAI instrumentations (SPEC section 11), with the real packages.

Runs only where they are installed: ``nox -s foreign`` (they stay out of the main test
environment, whose ``opentelemetry-instrument`` runs would load their entry points). Each case
makes real SDK calls against the local fake providers, which report known usage, and checks the
events the real exporter delivers to the local cmdrdata.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cmdrdata_exporter import CmdrDataSpanExporter
from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor, customer_context
from opentelemetry_instrumentation_cmdrdata.semconv import SCOPE_NAME
from tests.servers.anthropic_server import AnthropicUsage
from tests.servers.cmdrdata_server import TEST_API_KEY
from tests.servers.openai_server import OpenAIUsage

# name -> (module, OpenAI instrumentor, Anthropic instrumentor)
FOREIGN = {
    "openllmetry": (
        ("opentelemetry.instrumentation.openai", "OpenAIInstrumentor"),
        ("opentelemetry.instrumentation.anthropic", "AnthropicInstrumentor"),
    ),
    "openinference": (
        ("openinference.instrumentation.openai", "OpenAIInstrumentor"),
        ("openinference.instrumentation.anthropic", "AnthropicInstrumentor"),
    ),
    "official": (
        ("opentelemetry.instrumentation.genai.openai", "OpenAIInstrumentor"),
        ("opentelemetry.instrumentation.genai.anthropic", "AnthropicInstrumentor"),
    ),
}
OPENAI = OpenAIUsage(
    prompt_tokens=1500, completion_tokens=250, cached_tokens=1000, reasoning_tokens=100
)
ANTHROPIC = AnthropicUsage(
    input_tokens=90, output_tokens=40, cache_read_input_tokens=900, cache_creation_input_tokens=30
)
# What the provider reported, in SPEC section 4's meaning.
EXPECTED = {
    "openai": {
        "input": 1500,
        "output": 250,
        "cache_read": 1000,
        "cache_write": 0,
        "reasoning": 100,
    },
    "anthropic": {
        "input": 1020,
        "output": 40,
        "cache_read": 900,
        "cache_write": 30,
        "reasoning": 0,
    },
}


def _instrumentor(name: str, provider: str) -> Any:
    module, cls = FOREIGN[name][0 if provider == "openai" else 1]
    try:
        return getattr(importlib.import_module(module), cls)()
    except ImportError as exc:
        pytest.skip(f"{name} not installed here (nox -s foreign installs it): {exc}")


@pytest.fixture
def pipeline(cmdrdata_server, tmp_path) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A TracerProvider exporting every span at once to a genai-mode exporter (and memory)."""
    exporter = CmdrDataSpanExporter(
        api_key=TEST_API_KEY,
        endpoint=cmdrdata_server.url,
        spool_dir=tmp_path / "spool",
        span_source="genai",
        customer_attributes="cmdrdata.customer_id,user.id",
        foreign_hold=0.5,
        _poll_interval=0.05,
    )
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, memory
    provider.shutdown()


def _call(provider: str, openai_server, anthropic_server) -> None:
    if provider == "openai":
        openai_server.configure(usage=OPENAI)
        openai_server.client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    else:
        anthropic_server.configure(usage=ANTHROPIC)
        anthropic_server.client().messages.create(
            model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )


def _events(cmdrdata_server, n: int, settle: float = 1.5) -> list[dict[str, Any]]:
    """Wait for n events, then a little longer, so a second event for a call would show."""
    assert cmdrdata_server.wait_for(n, timeout=15), cmdrdata_server.events
    cmdrdata_server.wait_for(n + 1, timeout=settle)
    return list(cmdrdata_server.events)


def _assert_tokens(event: dict[str, Any], provider: str) -> None:
    want = EXPECTED[provider]
    meta = event["metadata"]
    assert (event["input_tokens"], event["output_tokens"]) == (want["input"], want["output"])
    assert event["total_tokens"] == want["input"] + want["output"]
    assert meta["cache_read_input_tokens"] == want["cache_read"]
    assert meta["cache_write_input_tokens"] == want["cache_write"]
    assert meta["reasoning_output_tokens"] == want["reasoning"]
    assert event["provider"] == provider


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("name", list(FOREIGN))
def test_their_span_alone_bills_what_the_provider_reported(
    name, provider, pipeline, cmdrdata_server, openai_server, anthropic_server
):
    tracer_provider, memory = pipeline
    theirs = _instrumentor(name, provider)
    theirs.instrument(tracer_provider=tracer_provider)
    try:
        _call(provider, openai_server, anthropic_server)
    finally:
        theirs.uninstrument()
    assert memory.get_finished_spans(), "their instrumentation made no span"
    (event,) = _events(cmdrdata_server, 1)
    _assert_tokens(event, provider)
    assert event["model"].startswith("gpt-4o-mini" if provider == "openai" else "claude-sonnet")
    assert event["customer_id"] == "unattributed"


@pytest.mark.parametrize("ours_first", [True, False], ids=["theirs-outside", "ours-outside"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("name", list(FOREIGN))
def test_ours_and_theirs_on_one_call_bill_ours_once(
    name, provider, ours_first, pipeline, cmdrdata_server, openai_server, anthropic_server
):
    tracer_provider, memory = pipeline
    ours, theirs = CmdrDataInstrumentor(), _instrumentor(name, provider)
    first, second = (ours, theirs) if ours_first else (theirs, ours)
    first.instrument(tracer_provider=tracer_provider)
    second.instrument(tracer_provider=tracer_provider)
    try:
        with customer_context("acme"):
            _call(provider, openai_server, anthropic_server)
    finally:
        second.uninstrument()
        first.uninstrument()
    spans = memory.get_finished_spans()
    (our_span,) = [s for s in spans if s.instrumentation_scope.name == SCOPE_NAME]
    assert len(spans) >= 2, "their instrumentation made no span of the call"
    events = _events(cmdrdata_server, 1, settle=2.0)
    assert len(events) == 1, [
        (
            s.name,
            s.instrumentation_scope.name,
            hex(s.context.span_id),
            s.parent and hex(s.parent.span_id),
        )
        for s in spans
    ]
    (event,) = events
    assert event["metadata"]["span_id"] == f"{our_span.context.span_id:016x}"
    assert event["customer_id"] == "acme"
    _assert_tokens(event, provider)


@pytest.mark.parametrize("ours_first", [True, False], ids=["theirs-over-ours", "ours-over-theirs"])
@pytest.mark.parametrize("name", list(FOREIGN))
def test_uninstrument_removes_only_our_wrapper(
    name, ours_first, pipeline, openai_server, anthropic_server
):
    tracer_provider, memory = pipeline
    ours, theirs = CmdrDataInstrumentor(), _instrumentor(name, "openai")
    first, second = (ours, theirs) if ours_first else (theirs, ours)
    first.instrument(tracer_provider=tracer_provider)
    second.instrument(tracer_provider=tracer_provider)
    try:
        ours.uninstrument()
        _call("openai", openai_server, anthropic_server)
        scopes = [s.instrumentation_scope.name for s in memory.get_finished_spans()]
        assert SCOPE_NAME not in scopes
        assert scopes, "uninstrumenting ours removed theirs too"
        memory.clear()
        ours.instrument(tracer_provider=tracer_provider)  # and back on, over theirs
        _call("openai", openai_server, anthropic_server)
        scopes = [s.instrumentation_scope.name for s in memory.get_finished_spans()]
        assert SCOPE_NAME in scopes and len(scopes) >= 2
    finally:
        ours.uninstrument()
        theirs.uninstrument()
    memory.clear()
    _call("openai", openai_server, anthropic_server)
    scopes = [s.instrumentation_scope.name for s in memory.get_finished_spans()]
    assert SCOPE_NAME not in scopes


def test_customer_from_openinference_user_id(pipeline, cmdrdata_server, openai_server):
    """CMDRDATA_CUSTOMER_ATTRIBUTES: OpenInference's ``using_user`` sets ``user.id``."""
    using_user = pytest.importorskip("openinference.instrumentation").using_user
    tracer_provider, _ = pipeline
    theirs = _instrumentor("openinference", "openai")
    theirs.instrument(tracer_provider=tracer_provider)
    try:
        with using_user("user-7@example.com"):
            _call("openai", openai_server, None)
    finally:
        theirs.uninstrument()
    (event,) = _events(cmdrdata_server, 1)
    assert event["customer_id"] == "user-7@example.com"
