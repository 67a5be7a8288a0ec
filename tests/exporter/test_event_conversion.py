"""SPEC section 5: the usage event built from real spans."""

from __future__ import annotations

import math
import re
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmdrdata_exporter import span_to_event, spans_to_events
from cmdrdata_exporter.config import resolve
from cmdrdata_exporter.diagnostics import Drops
from cmdrdata_exporter.events import RecentIds, encode
from opentelemetry_instrumentation_cmdrdata import semconv

DEFAULTS = resolve({}, {})
GENAI = resolve({"span_source": "genai"}, {})


def test_full_event_from_a_real_span(make_spans):
    (span,) = make_spans(
        **{
            semconv.GEN_AI_RESPONSE_ID: "chatcmpl-123",
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
            semconv.GEN_AI_REQUEST_STREAM: True,
            semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1000,
            semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 7,
            semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.2514,
            semconv.CMDRDATA_CUSTOMER_ID: "cust-42",
            semconv.CMDRDATA_USAGE_COMPLETE: True,
            "cmdrdata.metadata.plan": "pro",
            "cmdrdata.metadata.event_id": "forged",  # never overrides ours
        }
    )
    event = span_to_event(span, DEFAULTS)
    assert event is not None
    meta = event.pop("metadata")
    genai_prices = pytest.importorskip("genai_prices")
    price = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=1200, cache_read_tokens=1000, cache_write_tokens=7, output_tokens=300
        ),
        "gpt-4o-mini-2024-07-18",
        provider_id="openai",
    ).total_price
    assert event == {
        "customer_id": "cust-42",
        "model": "gpt-4o-mini-2024-07-18",
        "provider": "openai",
        "input_tokens": 1200,
        "output_tokens": 300,
        "total_tokens": 1500,
        "timestamp": event["timestamp"],
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["timestamp"])
    ms = span.end_time // 1_000_000
    assert event["timestamp"].endswith(f".{ms % 1000:03d}Z")
    assert meta == {
        "event_id": meta["event_id"],
        "operation": "chat",
        "provider_name": "openai",
        "request_model": "gpt-4o-mini",
        "response_id": "chatcmpl-123",
        "cache_read_input_tokens": 1000,
        "cache_write_input_tokens": 7,
        "reasoning_output_tokens": 0,
        "streaming": True,
        "duration_ms": round((span.end_time - span.start_time) / 1e6),
        "time_to_first_chunk_ms": 251,
        "finish_reasons": ["stop"],
        "error_type": None,
        "usage_complete": True,
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "service_name": "checkout-api",
        "cost_usd": format(price.normalize(), "f"),
        "cost_source": f"genai-prices {genai_prices.__version__}",
        "plan": "pro",
    }
    uuid.UUID(meta["event_id"])
    assert isinstance(meta["duration_ms"], int)
    assert encode({**event, "metadata": meta}).isascii()


def test_event_id_is_stable_per_span(make_spans):
    a, b = make_spans(2)
    assert (
        span_to_event(a, DEFAULTS)["metadata"]["event_id"]
        == (span_to_event(a, DEFAULTS)["metadata"]["event_id"])
    )
    assert (
        span_to_event(a, DEFAULTS)["metadata"]["event_id"]
        != (span_to_event(b, DEFAULTS)["metadata"]["event_id"])
    )


@pytest.mark.parametrize(
    ("semconv_name", "cmdrdata_name"),
    [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("gcp.gemini", "google"),
        ("gcp.vertex_ai", "google"),
        ("groq", "groq"),
        ("azure.ai.openai", "azure.ai.openai"),
    ],
)
def test_provider_names(make_spans, semconv_name, cmdrdata_name):
    (span,) = make_spans(**{semconv.GEN_AI_PROVIDER_NAME: semconv_name})
    event = span_to_event(span, DEFAULTS)
    assert event["provider"] == cmdrdata_name
    assert event["metadata"]["provider_name"] == semconv_name


def test_model_falls_back_to_request_model_and_customer_to_default(make_spans):
    (span,) = make_spans(**{semconv.GEN_AI_RESPONSE_MODEL: None})
    event = span_to_event(span, resolve({"default_customer_id": "house"}, {}))
    assert event["model"] == "gpt-4o-mini"
    assert event["customer_id"] == "house"
    assert span_to_event(span, DEFAULTS)["customer_id"] == "unattributed"


def test_failed_call_is_still_an_event(make_spans):
    (typed,) = make_spans(
        error=True,
        **{
            semconv.ERROR_TYPE: "RateLimitError",
            semconv.GEN_AI_USAGE_INPUT_TOKENS: None,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: None,
        },
    )
    event = span_to_event(typed, DEFAULTS)
    assert event["metadata"]["error_type"] == "RateLimitError"
    assert (event["input_tokens"], event["output_tokens"], event["total_tokens"]) == (0, 0, 0)
    (untyped,) = make_spans(error=True)
    assert span_to_event(untyped, DEFAULTS)["metadata"]["error_type"] == "_OTHER"


@pytest.mark.parametrize(
    ("complete", "error", "scope", "expected"),
    [
        (True, False, semconv.SCOPE_NAME, True),
        (False, False, semconv.SCOPE_NAME, False),  # an aborted stream, billed as reported
        (True, True, semconv.SCOPE_NAME, False),  # a failed call never is
        (None, False, "openllmetry", True),  # no flag: usage and no error
        (None, True, "openllmetry", False),
        ("yes", False, "openllmetry", True),  # not a bool: derived the same way
    ],
)
def test_usage_complete_is_on_every_event(make_spans, complete, error, scope, expected):
    (span,) = make_spans(scope=scope, error=error, **{semconv.CMDRDATA_USAGE_COMPLETE: complete})
    event = span_to_event(span, GENAI)
    assert event["metadata"]["usage_complete"] is expected
    assert (event["input_tokens"], event["output_tokens"]) == (1200, 300)


def test_usage_complete_without_flag_or_usage_is_false(make_spans):
    (span,) = make_spans(
        **{semconv.GEN_AI_USAGE_INPUT_TOKENS: None, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: None}
    )
    event = span_to_event(span, DEFAULTS)
    assert event["metadata"]["usage_complete"] is False
    assert event["input_tokens"] == 0


def test_instrumentor_source_bills_only_our_scope(make_spans):
    foreign = make_spans(scope="opentelemetry.instrumentation.openai_v2")
    no_operation = make_spans(**{semconv.GEN_AI_OPERATION_NAME: None})
    assert span_to_event(foreign[0], DEFAULTS) is None
    assert span_to_event(no_operation[0], DEFAULTS) is None
    assert span_to_event(foreign[0], GENAI) is not None


def test_genai_source_normalises_aliases(make_spans):
    (span,) = make_spans(
        scope="openllmetry",
        **{
            semconv.GEN_AI_PROVIDER_NAME: None,
            semconv.GEN_AI_SYSTEM: "gemini",
            semconv.GEN_AI_USAGE_INPUT_TOKENS: None,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: None,
            "gen_ai.usage.prompt_tokens": 11,
            "gen_ai.usage.completion_tokens": 4,
            semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 3,
        },
    )
    event = span_to_event(span, GENAI)
    assert event["provider"] == "google"
    assert event["metadata"]["provider_name"] == "gcp.gemini"
    assert (event["input_tokens"], event["output_tokens"]) == (11, 4)
    assert event["metadata"]["cache_write_input_tokens"] == 3
    (no_usage,) = make_spans(
        scope="x",
        **{semconv.GEN_AI_USAGE_INPUT_TOKENS: None, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: None},
    )
    assert span_to_event(no_usage, GENAI) is None


def test_genai_source_bills_each_call_once(make_spans):
    rid = {semconv.GEN_AI_RESPONSE_ID: "msg_1", semconv.GEN_AI_PROVIDER_NAME: "anthropic"}
    foreign = make_spans(scope="anthropic-sdk", **rid)
    ours = make_spans(**rid)
    recent = RecentIds()
    events = spans_to_events(foreign + ours, GENAI, Drops(), recent)
    assert len(events) == 1
    assert events[0]["metadata"]["span_id"] == f"{ours[0].context.span_id:016x}"
    # a later batch with another instrumentation's span of the same call is not billed again
    again = make_spans(scope="third", **rid)
    assert spans_to_events(again, GENAI, Drops(), recent) == []
    other = make_spans(scope="third", **{**rid, semconv.GEN_AI_RESPONSE_ID: "msg_2"})
    assert len(spans_to_events(other, GENAI, Drops(), recent)) == 1


@pytest.mark.parametrize("bad", [-1, 1.5, True, "12", 2**60, math.nan, ("1",)])
def test_bad_token_values_become_zero_and_are_counted(make_spans, bad, caplog):
    (span,) = make_spans(**{semconv.GEN_AI_USAGE_INPUT_TOKENS: bad})
    drops = Drops()
    event = span_to_event(span, DEFAULTS, drops)
    assert event["input_tokens"] == 0 and event["total_tokens"] == 300
    assert drops.snapshot() == {"bad_token_value": 1}
    span_to_event(span, DEFAULTS, drops)
    assert drops.snapshot() == {"bad_token_value": 2}
    assert sum("token count" in r.getMessage() for r in caplog.records) == 1  # logged once


def test_huge_strings_are_clipped_and_customer_ids_kept(make_spans):
    long_customer = "c" * 300
    (span,) = make_spans(
        **{
            semconv.CMDRDATA_CUSTOMER_ID: long_customer,
            semconv.GEN_AI_RESPONSE_ID: "é" * 5000,
            "cmdrdata.metadata.note": "x" * 10_000,
            "cmdrdata.metadata.ratio": math.inf,
        }
    )
    drops = Drops()
    event = span_to_event(span, DEFAULTS, drops)
    assert event["customer_id"] == long_customer
    assert len(event["metadata"]["response_id"]) == 1024
    assert len(event["metadata"]["note"]) == 1024
    assert event["metadata"]["ratio"] is None
    counts = drops.snapshot()
    assert counts["long_customer_id"] == 1 and counts["clipped_string"] == 2
    encode(event)  # valid JSON, no NaN


attribute_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.lists(st.text(max_size=5), max_size=3).map(tuple),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.dictionaries(
        st.sampled_from(
            [
                semconv.GEN_AI_USAGE_INPUT_TOKENS,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
                semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
                semconv.GEN_AI_RESPONSE_MODEL,
                semconv.GEN_AI_PROVIDER_NAME,
                semconv.GEN_AI_RESPONSE_FINISH_REASONS,
                semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
                semconv.GEN_AI_REQUEST_STREAM,
                semconv.CMDRDATA_CUSTOMER_ID,
                semconv.ERROR_TYPE,
                "cmdrdata.metadata.k",
            ]
        ),
        attribute_values,
    )
)
def test_any_attribute_values_convert_without_raising(make_spans, values):
    (span,) = make_spans(**values)
    event = span_to_event(span, DEFAULTS, Drops())
    assert event is not None
    body = encode(event)
    assert isinstance(event["input_tokens"], int) and event["input_tokens"] >= 0
    assert isinstance(event["customer_id"], str) and event["customer_id"]
    assert event["total_tokens"] == event["input_tokens"] + event["output_tokens"]
    assert isinstance(event["metadata"]["streaming"], bool)
    assert body
