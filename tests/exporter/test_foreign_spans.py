"""``genai`` mode with spans other instrumentations made (SPEC section 11), in the main suite.

The attribute sets below are the ones the real packages wrote for the same fake-provider calls
(``tests/foreign`` checks them against the packages themselves under ``nox -s foreign``).
Spans are real SDK spans; parent and child come from real nesting under a TracerProvider.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import wrapt
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cmdrdata_exporter.config import resolve
from cmdrdata_exporter.diagnostics import Drops
from cmdrdata_exporter.events import span_to_event
from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor
from opentelemetry_instrumentation_cmdrdata.semconv import SCOPE_NAME
from tests.span_maker import BASE_ATTRS

OPENINFERENCE_ANTHROPIC = {
    "openinference.span.kind": "LLM",
    "llm.provider": "anthropic",
    "llm.system": "anthropic",
    "llm.model_name": "claude-sonnet-4",
    "llm.token_count.prompt": 1020,
    "llm.token_count.completion": 40,
    "llm.token_count.total": 1060,
    "llm.token_count.prompt_details.cache_read": 900,
    "llm.token_count.prompt_details.cache_write": 30,
}
OPENINFERENCE_EMBEDDING = {
    "openinference.span.kind": "EMBEDDING",
    "llm.system": "openai",
    "embedding.model_name": "text-embedding-3-small",
    "llm.token_count.prompt": 1500,
    "llm.token_count.total": 1500,
}
OPENLLMETRY_OPENAI = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-1",
    "gen_ai.usage.input_tokens": 1500,
    "gen_ai.usage.output_tokens": 250,
    "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.usage.reasoning_tokens": 100,
    "gen_ai.usage.total_tokens": 1750,
}
OLD_GEN_AI_CACHE_EXCLUSIVE = {  # older names, Anthropic's raw input (without the cache)
    "gen_ai.operation.name": "chat",
    "gen_ai.system": "anthropic",
    "gen_ai.request.model": "claude-3-5-sonnet",
    "gen_ai.usage.prompt_tokens": 90,
    "gen_ai.usage.completion_tokens": 40,
    "gen_ai.usage.cache_read_input_tokens": 900,
    "gen_ai.usage.cache_creation_input_tokens": 30,
}
GENAI = resolve({"span_source": "genai"}, {})


def _span(scope: str, attrs: dict[str, Any]) -> Any:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer(scope).start_as_current_span("call", attributes=attrs):
        pass
    return memory.get_finished_spans()[0]


@pytest.mark.parametrize(
    ("scope", "attrs", "want"),
    [
        (
            "openinference.instrumentation.anthropic",
            OPENINFERENCE_ANTHROPIC,
            (1020, 40, 900, 30, 0),
        ),
        ("openinference.instrumentation.openai", OPENINFERENCE_EMBEDDING, (1500, 0, 0, 0, 0)),
        ("opentelemetry.instrumentation.openai.v1", OPENLLMETRY_OPENAI, (1500, 250, 1000, 0, 100)),
        ("legacy", OLD_GEN_AI_CACHE_EXCLUSIVE, (1020, 40, 900, 30, 0)),
    ],
    ids=["openinference-anthropic", "openinference-embedding", "openllmetry-openai", "old-names"],
)
def test_foreign_names_are_billed_with_our_meaning(scope, attrs, want):
    event = span_to_event(_span(scope, attrs), GENAI, Drops())
    assert event is not None
    meta = event["metadata"]
    got = (
        event["input_tokens"],
        event["output_tokens"],
        meta["cache_read_input_tokens"],
        meta["cache_write_input_tokens"],
        meta["reasoning_output_tokens"],
    )
    assert got == want
    assert event["total_tokens"] == want[0] + want[1]
    assert event["model"] != "unknown" and event["provider"] != "unknown"


def test_other_openinference_kinds_are_not_calls():
    chain = {**OPENINFERENCE_ANTHROPIC, "openinference.span.kind": "CHAIN"}
    assert span_to_event(_span("openinference.instrumentation.langchain", chain), GENAI) is None


def test_customer_attributes_first_non_empty_wins_for_foreign_spans_only(monkeypatch):
    monkeypatch.setenv("CMDRDATA_CUSTOMER_ATTRIBUTES", " enduser.id, user.id ,,")
    monkeypatch.setenv("CMDRDATA_SPAN_SOURCE", "genai")
    settings = resolve({}, None)
    assert settings.customer_attributes == ("enduser.id", "user.id")
    foreign = {**OPENINFERENCE_ANTHROPIC, "enduser.id": "  ", "user.id": "u-7"}
    assert span_to_event(_span("oi", foreign), settings)["customer_id"] == "u-7"
    # a customer attribute not in the list does not count for a foreign span
    other = {**OPENINFERENCE_ANTHROPIC, "cmdrdata.customer_id": "acme"}
    assert span_to_event(_span("oi", other), settings)["customer_id"] == "unattributed"
    # our own spans keep cmdrdata.customer_id
    ours = {**BASE_ATTRS, "cmdrdata.customer_id": "acme", "user.id": "u-7"}
    assert span_to_event(_span(SCOPE_NAME, ours), settings)["customer_id"] == "acme"
    assert resolve({}, {}).customer_attributes == ("cmdrdata.customer_id",)


def _nested(outer: tuple[str, dict], inner: tuple[str, dict], exporter: Any) -> None:
    """outer span around inner span, exported one by one as they end (inner first)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    outer_tracer, inner_tracer = provider.get_tracer(outer[0]), provider.get_tracer(inner[0])
    with (
        outer_tracer.start_as_current_span("outer", attributes=outer[1]),
        inner_tracer.start_as_current_span("inner", attributes=inner[1]),
    ):
        pass


@pytest.mark.parametrize("ours_outside", [True, False])
def test_a_foreign_span_around_or_inside_ours_is_never_billed(
    ours_outside, make_exporter, cmdrdata_server
):
    exporter = make_exporter(span_source="genai", foreign_hold=0.5, bill_unsampled=False)
    ours = (SCOPE_NAME, {**BASE_ATTRS, "cmdrdata.customer_id": "acme"})
    theirs = ("openinference.instrumentation.openai", OPENINFERENCE_ANTHROPIC)
    if ours_outside:
        _nested(ours, theirs, exporter)
    else:
        _nested(theirs, ours, exporter)
    assert cmdrdata_server.wait_for(1)
    time.sleep(1.0)  # past the hold: a withdrawn event would have gone out by now
    exporter.force_flush()
    (event,) = cmdrdata_server.events
    assert event["customer_id"] == "acme"
    assert event["input_tokens"] == BASE_ATTRS["gen_ai.usage.input_tokens"]


def test_of_two_foreign_spans_of_one_call_the_inner_is_billed(make_exporter, cmdrdata_server):
    exporter = make_exporter(span_source="genai", foreign_hold=0.3, bill_unsampled=False)
    outer = ("opentelemetry.instrumentation.openai.v1", OPENLLMETRY_OPENAI)
    inner = ("openinference.instrumentation.anthropic", OPENINFERENCE_ANTHROPIC)
    _nested(outer, inner, exporter)
    assert cmdrdata_server.wait_for(1, timeout=10)
    time.sleep(0.8)
    (event,) = cmdrdata_server.events
    assert event["provider"] == "anthropic"


def test_a_foreign_span_alone_is_billed_after_its_hold(make_exporter, cmdrdata_server):
    exporter = make_exporter(span_source="genai", foreign_hold=0.4, bill_unsampled=False)
    exporter.export([_span("opentelemetry.instrumentation.openai.v1", OPENLLMETRY_OPENAI)])
    time.sleep(0.2)
    exporter.force_flush(timeout_millis=100)
    assert cmdrdata_server.count == 0  # still held
    assert cmdrdata_server.wait_for(1, timeout=10)
    time.sleep(0.3)
    assert cmdrdata_server.count == 1


def test_uninstrument_splices_ours_out_from_under_another_wrapper(
    tracer_provider, span_exporter, openai_server
):
    """Theirs (a plain wrapt wrapper, as OpenLLMetry and the official ones use) over ours, and
    ours over theirs: ``uninstrument()`` leaves theirs working and ours gone."""
    import openai.resources.embeddings as module

    calls: list[str] = []

    def theirs(wrapped, instance, args, kwargs):
        calls.append("theirs")
        return wrapped(*args, **kwargs)

    def call_and_see() -> list[str]:
        calls.clear()
        span_exporter.clear()
        openai_server.client().embeddings.create(model="text-embedding-3-small", input="hi")
        scopes = [s.instrumentation_scope.name for s in span_exporter.get_finished_spans()]
        return calls + scopes

    original = vars(module.Embeddings)["create"]
    ours = CmdrDataInstrumentor()
    try:
        ours.instrument(tracer_provider=tracer_provider)
        wrapt.wrap_function_wrapper(module, "Embeddings.create", theirs)
        assert call_and_see() == ["theirs", SCOPE_NAME]
        ours.uninstrument()
        assert call_and_see() == ["theirs"]
        top = vars(module.Embeddings)["create"]
        assert top.__wrapped__ is original
        ours.instrument(tracer_provider=tracer_provider)  # now ours over theirs
        assert call_and_see() == ["theirs", SCOPE_NAME]
        ours.uninstrument()
        assert vars(module.Embeddings)["create"] is top
        assert call_and_see() == ["theirs"]
    finally:
        ours.uninstrument()
        module.Embeddings.create = original
