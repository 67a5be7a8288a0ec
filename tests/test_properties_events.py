"""Property-based tests of span -> usage event (``cmdrdata_exporter.events``, SPEC section 5).

Spans are built as real ``ReadableSpan`` objects straight from hypothesis data, bypassing the
SDK's attribute cleaning, so that every shape another instrumentation (or a buggy one) could put
on a span is covered: missing, wrong types, negative and huge numbers, NaN/inf, bools, non-ASCII
and huge strings, sequences, nested-looking metadata keys, odd scopes, resources, statuses and
times. The properties:

- ``span_to_event`` never raises, and every billable span gives an event (a conversion error
  would silently lose a billable call);
- an event has exactly the SPEC section 5 fields, each with its type, non-negative integer
  tokens, ``total = input + output``, an ISO-8601 UTC ``Z`` timestamp equal to the span's end;
- ``event_id`` is a function of the trace and span ids alone;
- customer metadata never overrides a key this package sets;
- the event survives ``json.dumps`` / ``json.loads`` and the exporter's own ``encode``;
- with ``span_source=genai``: provider aliases are normalised and one call (provider +
  response id) is billed once, our own scope's span winning.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import uuid
from datetime import datetime, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

from cmdrdata_exporter.config import resolve
from cmdrdata_exporter.diagnostics import Drops
from cmdrdata_exporter.events import (
    MAX_TOKENS,
    RecentIds,
    encode,
    event_id_for,
    span_to_event,
    spans_to_events,
)
from opentelemetry_instrumentation_cmdrdata import semconv as sc


def cases(n: int) -> settings:
    """Hypothesis settings for ``n`` generated cases (this module runs in about 15 s)."""
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


INSTRUMENTOR = resolve({"span_source": "instrumentor"}, environ={})
GENAI = resolve({"span_source": "genai"}, environ={})

EVENT_KEYS = {
    "customer_id",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "timestamp",
    "metadata",
}
# Our metadata keys and the types each may take.
OUR_METADATA: dict[str, tuple[type, ...]] = {
    "event_id": (str,),
    "operation": (str, type(None)),
    "provider_name": (str, type(None)),
    "request_model": (str, type(None)),
    "response_id": (str, type(None)),
    "cache_read_input_tokens": (int,),
    "cache_write_input_tokens": (int,),
    "reasoning_output_tokens": (int,),
    "streaming": (bool,),
    "duration_ms": (int,),
    "time_to_first_chunk_ms": (int, type(None)),
    "finish_reasons": (list,),
    "error_type": (str, type(None)),
    "usage_complete": (bool,),
    "trace_id": (str,),
    "span_id": (str,),
    "service_name": (str, type(None)),
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

# -- strategies -----------------------------------------------------------------------------

# Non-ASCII, control characters, emoji, RTL, NUL...; surrogates are left out (a Python str
# attribute can hold one, but no OpenTelemetry exporter can encode it).
texts = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=40),
    st.sampled_from(["", " ", "\t", "\x00", "é", "客户-42", "🚀", "a" * 1025, "x" * 5000]),
)
huge_ints = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([-1, 0, MAX_TOKENS, MAX_TOKENS + 1, 2**63, 2**64 + 7, -(2**63)]),
)
floats = st.floats(allow_nan=True, allow_infinity=True)
scalars = st.one_of(st.none(), st.booleans(), huge_ints, floats, texts, st.binary(max_size=8))
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.lists(scalars, max_size=4).map(tuple),
    st.dictionaries(st.text(max_size=4), scalars, max_size=3),
    st.just(object()),
    st.just(Status(StatusCode.OK)),
)
token_values = st.one_of(st.integers(min_value=0, max_value=10**7), values)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value for an attribute that may be missing (``MISSING`` leaves it out)."""
    return st.one_of(st.just(MISSING), strategy)


MISSING = object()

PROVIDERS = ["openai", "anthropic", "gcp.gemini", "gemini", "vertex_ai", "gcp.vertex_ai", "groq"]
provider_names = st.one_of(st.sampled_from(PROVIDERS), values)

# Attributes with a meaning for the exporter, each with the values it may carry.
KNOWN: dict[str, st.SearchStrategy[Any]] = {
    sc.GEN_AI_OPERATION_NAME: st.one_of(st.sampled_from(["chat", "embeddings"]), values),
    sc.GEN_AI_PROVIDER_NAME: provider_names,
    sc.GEN_AI_SYSTEM: provider_names,
    sc.GEN_AI_REQUEST_MODEL: st.one_of(st.just("gpt-4o-mini"), values),
    sc.GEN_AI_RESPONSE_MODEL: st.one_of(st.just("gpt-4o-mini-2024-07-18"), values),
    sc.GEN_AI_RESPONSE_ID: st.one_of(st.sampled_from(["r1", "r2"]), values),
    sc.GEN_AI_RESPONSE_FINISH_REASONS: st.one_of(st.just(("stop",)), values),
    sc.GEN_AI_REQUEST_STREAM: st.one_of(st.booleans(), values),
    sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: st.one_of(st.floats(0, 100), values),
    sc.GEN_AI_USAGE_INPUT_TOKENS: token_values,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS: token_values,
    "gen_ai.usage.prompt_tokens": token_values,
    "gen_ai.usage.completion_tokens": token_values,
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: token_values,
    sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: token_values,
    sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: token_values,
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: token_values,
    sc.ERROR_TYPE: st.one_of(st.just("RateLimitError"), values),
    sc.CMDRDATA_CUSTOMER_ID: st.one_of(st.just("cust-42"), values),
    sc.CMDRDATA_USAGE_COMPLETE: st.one_of(st.booleans(), values),
}
metadata_keys = st.one_of(
    st.sampled_from([*sorted(OUR_METADATA), "plan", "x.y", "a.b.c", "", "customer_id"]),
    st.text(max_size=10),
    st.just("k" * 1100),
)


@st.composite
def attribute_maps(draw: st.DrawFn, billable_bias: bool = True) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for name, strategy in KNOWN.items():
        value = draw(maybe(strategy))
        if value is not MISSING:
            attrs[name] = value
    if billable_bias and draw(st.booleans()):
        attrs.setdefault(sc.GEN_AI_OPERATION_NAME, "chat")
    for key in draw(st.lists(metadata_keys, max_size=6)):
        attrs[sc.CMDRDATA_METADATA_PREFIX + key] = draw(values)
    for key in draw(st.lists(st.text(max_size=8), max_size=3)):
        attrs[key] = draw(values)
    return attrs


scopes = st.one_of(
    st.none(),
    st.sampled_from([sc.SCOPE_NAME, "opentelemetry.instrumentation.openai_v2", "anthropic", ""]),
    st.text(max_size=20),
).map(lambda name: None if name is None else InstrumentationScope(name, "1.0"))
resources = st.one_of(
    st.none(),
    st.just(Resource.create({"service.name": "checkout-api"})),
    st.builds(lambda v: Resource({"service.name": v}), st.one_of(texts, huge_ints, st.booleans())),
    st.just(Resource({})),
)
statuses = st.builds(
    lambda code, text: Status(code, text if code is StatusCode.ERROR else None),
    st.sampled_from(list(StatusCode)),
    st.one_of(st.none(), texts),
)
# Nanoseconds since the epoch, up to the year 2262 (the end of a signed 64-bit ns clock).
times = st.one_of(st.none(), st.integers(min_value=0, max_value=2**63 - 1))
trace_ids = st.integers(min_value=1, max_value=2**128 - 1)
span_ids = st.integers(min_value=1, max_value=2**64 - 1)
contexts = st.one_of(
    st.none(),
    st.builds(lambda t, s: SpanContext(t, s, is_remote=False), trace_ids, span_ids),
)


@st.composite
def readable_spans(draw: st.DrawFn, scope: Any = None) -> ReadableSpan:
    return ReadableSpan(
        name=draw(st.text(max_size=10)),
        context=draw(contexts),
        resource=draw(resources),
        attributes=draw(attribute_maps()),
        kind=SpanKind.CLIENT,
        status=draw(statuses),
        start_time=draw(times),
        end_time=draw(times),
        instrumentation_scope=draw(scopes) if scope is None else scope,
    )


# -- the checks -----------------------------------------------------------------------------


def is_billable(span: ReadableSpan, span_source: str) -> bool:
    attrs = span.attributes or {}
    if sc.GEN_AI_OPERATION_NAME not in attrs:
        return False
    if span_source == "genai":
        return any(
            k in attrs
            for k in (
                sc.GEN_AI_USAGE_INPUT_TOKENS,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS,
                "gen_ai.usage.prompt_tokens",
                "gen_ai.usage.completion_tokens",
            )
        )
    scope = span.instrumentation_scope
    return scope is not None and scope.name == sc.SCOPE_NAME


def assert_event_shape(event: dict[str, Any], span: ReadableSpan) -> None:
    """SPEC section 5, field by field."""
    assert set(event) == EVENT_KEYS
    assert type(event["customer_id"]) is str and event["customer_id"].strip()
    assert type(event["model"]) is str and event["model"]
    assert type(event["provider"]) is str and event["provider"]
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        assert type(event[key]) is int and 0 <= event[key] <= 2 * MAX_TOKENS, (key, event[key])
    assert event["total_tokens"] == event["input_tokens"] + event["output_tokens"]
    assert TIMESTAMP.match(event["timestamp"]), event["timestamp"]
    if span.end_time is not None:
        stamp = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
        assert stamp.tzinfo == timezone.utc
        expected_ms = span.end_time // 1_000_000
        assert round(stamp.timestamp() * 1000) == expected_ms

    meta = event["metadata"]
    assert type(meta) is dict
    for key, types in OUR_METADATA.items():
        assert key in meta, key
        assert type(meta[key]) in types, (key, meta[key])
    for key in ("cache_read_input_tokens", "cache_write_input_tokens", "reasoning_output_tokens"):
        assert 0 <= meta[key] <= MAX_TOKENS
    assert meta["duration_ms"] >= 0
    if meta["time_to_first_chunk_ms"] is not None:
        assert meta["time_to_first_chunk_ms"] >= 0
    assert all(type(r) is str for r in meta["finish_reasons"])
    assert re.fullmatch(r"[0-9a-f]{32}", meta["trace_id"])
    assert re.fullmatch(r"[0-9a-f]{16}", meta["span_id"])
    assert uuid.UUID(meta["event_id"]).version == 5
    ctx = span.context
    trace_id, span_id = (ctx.trace_id, ctx.span_id) if ctx is not None else (0, 0)
    assert meta["event_id"] == event_id_for(trace_id, span_id)
    assert meta["trace_id"] == f"{trace_id:032x}"
    assert meta["span_id"] == f"{span_id:016x}"
    if span.status.status_code is StatusCode.ERROR:
        # (An empty ``error.type`` is checked on its own below.)
        assert meta["error_type"] is not None, "a failed call names its error"
    flag = (span.attributes or {}).get(sc.CMDRDATA_USAGE_COMPLETE)
    if meta["error_type"] is not None:
        assert meta["usage_complete"] is False, "a failed call's usage is never complete"
    elif isinstance(flag, bool):
        assert meta["usage_complete"] is flag
    assert all(type(k) is str for k in meta)

    # JSON: what the server gets parses back to the same event, and needs no NaN extension.
    text = json.dumps(event, ensure_ascii=False, allow_nan=False)
    assert json.loads(text) == event
    wire = encode(event)
    assert wire.isascii()
    assert json.loads(wire) == event


def assert_tokens_follow_attributes(event: dict[str, Any], span: ReadableSpan) -> None:
    """Sane integer attributes are billed as they are; anything else as 0."""
    attrs = span.attributes or {}

    def first(*names: str) -> int:
        for name in names:
            value = attrs.get(name)
            if value is None:
                continue
            return value if type(value) is int and 0 <= value <= MAX_TOKENS else 0
        return 0

    assert event["input_tokens"] == first(
        sc.GEN_AI_USAGE_INPUT_TOKENS, "gen_ai.usage.prompt_tokens"
    )
    assert event["output_tokens"] == first(
        sc.GEN_AI_USAGE_OUTPUT_TOKENS, "gen_ai.usage.completion_tokens"
    )
    meta = event["metadata"]
    assert meta["cache_read_input_tokens"] == first(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)
    assert meta["cache_write_input_tokens"] == first(
        sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
    )
    assert meta["reasoning_output_tokens"] == first(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS)
    assert meta["streaming"] is (attrs.get(sc.GEN_AI_REQUEST_STREAM) is True)
    # Held to customer_context's rules: trimmed; blank or holding a control character (Cc)
    # goes to the default customer.
    customer = attrs.get(sc.CMDRDATA_CUSTOMER_ID)
    trimmed = customer.strip() if isinstance(customer, str) else ""
    if trimmed and not any(unicodedata.category(c) == "Cc" for c in trimmed):
        assert event["customer_id"] == trimmed
    else:
        assert event["customer_id"] == "unattributed"


# -- properties -----------------------------------------------------------------------------


@cases(300)
@given(span=readable_spans(), source=st.sampled_from(["instrumentor", "genai"]))
def test_any_span_converts_without_raising_and_to_a_valid_event(span, source):
    settings_ = INSTRUMENTOR if source == "instrumentor" else GENAI
    drops = Drops()
    event = span_to_event(span, settings_, drops)
    counts = drops.snapshot()
    if not is_billable(span, source):
        assert event is None
        return
    # A billable span that fails to convert is a call nobody is billed for.
    assert "conversion_error" not in counts, counts
    assert event is not None
    assert_event_shape(event, span)
    assert_tokens_follow_attributes(event, span)


@cases(100)
@given(span=readable_spans(scope=InstrumentationScope(sc.SCOPE_NAME, "1")))
def test_our_scope_spans_with_an_operation_are_always_billed(span):
    attrs = dict(span.attributes or {})
    attrs.setdefault(sc.GEN_AI_OPERATION_NAME, "chat")
    span = ReadableSpan(
        name="chat",
        context=span.context,
        resource=span.resource,
        attributes=attrs,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
    event = span_to_event(span, INSTRUMENTOR, Drops())
    assert event is not None
    assert_event_shape(event, span)


@cases(60)
@given(span=readable_spans(), other_attrs=attribute_maps(), ids=st.tuples(trace_ids, span_ids))
def test_event_id_depends_on_the_trace_and_span_ids_only(span, other_attrs, ids):
    context = SpanContext(*ids, is_remote=False)
    scope = InstrumentationScope(sc.SCOPE_NAME, "1")
    first = ReadableSpan(
        "a",
        context=context,
        attributes={**(span.attributes or {}), sc.GEN_AI_OPERATION_NAME: "chat"},
        instrumentation_scope=scope,
        start_time=span.start_time,
        end_time=span.end_time,
    )
    second = ReadableSpan(
        "b",
        context=context,
        attributes={**other_attrs, sc.GEN_AI_OPERATION_NAME: "embeddings"},
        instrumentation_scope=scope,
        end_time=12345,
    )
    one = span_to_event(first, INSTRUMENTOR, Drops())
    again = span_to_event(first, INSTRUMENTOR, Drops())
    two = span_to_event(second, INSTRUMENTOR, Drops())
    assert one is not None and again is not None and two is not None
    assert one["metadata"]["event_id"] == again["metadata"]["event_id"]
    assert one["metadata"]["event_id"] == two["metadata"]["event_id"]
    assert one["metadata"]["event_id"] == event_id_for(*ids)
    other = event_id_for(ids[0], ids[1] ^ 1)
    assert other != one["metadata"]["event_id"]


@cases(100)
@given(
    span=readable_spans(scope=InstrumentationScope(sc.SCOPE_NAME, "1")),
    clashes=st.dictionaries(st.sampled_from(sorted(OUR_METADATA)), values, min_size=1),
)
def test_customer_metadata_never_overrides_our_keys(span, clashes):
    base = {
        k: v
        for k, v in (span.attributes or {}).items()
        if not k.startswith(sc.CMDRDATA_METADATA_PREFIX)
    }
    base[sc.GEN_AI_OPERATION_NAME] = "chat"
    with_clashes = {**base, **{sc.CMDRDATA_METADATA_PREFIX + k: v for k, v in clashes.items()}}

    def event_of(attrs: dict[str, Any]) -> dict[str, Any]:
        made = ReadableSpan(
            "chat",
            context=span.context,
            resource=span.resource,
            attributes=attrs,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time if span.end_time is not None else 10**18,
            instrumentation_scope=span.instrumentation_scope,
        )
        event = span_to_event(made, INSTRUMENTOR, Drops())
        assert event is not None
        return event

    plain, clashing = event_of(base), event_of(with_clashes)
    assert clashing == plain


@cases(200)
@given(
    key=st.one_of(st.text(min_size=1, max_size=30), st.sampled_from(["x.y", "a.b.c", "plan"])),
    value=values,
)
def test_customer_metadata_is_kept_as_json(key, value):
    attrs = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.CMDRDATA_METADATA_PREFIX + key: value,
    }
    span = ReadableSpan(
        "chat",
        context=SpanContext(1, 1, is_remote=False),
        attributes=attrs,
        end_time=10**18,
        instrumentation_scope=InstrumentationScope(sc.SCOPE_NAME, "1"),
    )
    event = span_to_event(span, INSTRUMENTOR, Drops())
    assert event is not None
    assert_event_shape(event, span)
    if key in OUR_METADATA:
        return
    assert key in event["metadata"]
    kept = event["metadata"][key]
    if isinstance(value, str):
        assert kept == value[:1024]
    elif isinstance(value, float) and not math.isfinite(value):
        assert kept is None
    elif type(value) in (bool, int, float) or value is None:
        assert kept == value


# -- span_source=genai: aliases and one event per call -----------------------------------------

ALIASES = {"gemini": "gcp.gemini", "vertex_ai": "gcp.vertex_ai"}


@st.composite
def genai_spans(draw: st.DrawFn) -> tuple[ReadableSpan, bool, str | None, str | None]:
    """A usage-carrying GenAI span from any scope: (span, ours, provider_name, response id)."""
    ours = draw(st.booleans())
    provider = draw(st.sampled_from(["openai", "gemini", "gcp.gemini", "vertex_ai", "anthropic"]))
    legacy = draw(st.booleans())  # gen_ai.system instead of gen_ai.provider.name
    response_id = draw(st.one_of(st.none(), st.sampled_from(["r1", "r2", "r3", ""])))
    attrs: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_SYSTEM if legacy else sc.GEN_AI_PROVIDER_NAME: provider,
        sc.GEN_AI_USAGE_INPUT_TOKENS: draw(st.integers(0, 1000)),
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: draw(st.integers(0, 1000)),
    }
    if draw(st.booleans()):
        attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = draw(st.integers(0, 50))
    if response_id is not None:
        attrs[sc.GEN_AI_RESPONSE_ID] = response_id
    span = ReadableSpan(
        "chat",
        context=SpanContext(draw(trace_ids), draw(span_ids), is_remote=False),
        attributes=attrs,
        end_time=draw(st.integers(0, 2**62)),
        instrumentation_scope=InstrumentationScope(
            sc.SCOPE_NAME if ours else draw(st.sampled_from(["openllmetry", "otel-genai"])), "1"
        ),
    )
    return span, ours, ALIASES.get(provider, provider), response_id or None


def with_span_id(span: ReadableSpan, span_id: int) -> ReadableSpan:
    return ReadableSpan(
        span.name,
        context=SpanContext(span.context.trace_id, span_id, is_remote=False),
        attributes=span.attributes,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


@cases(120)
@given(batch=st.lists(genai_spans(), max_size=12), split=st.integers(0, 12))
def test_genai_source_bills_each_call_once(batch, split):
    batch = [(with_span_id(item[0], i + 1), *item[1:]) for i, item in enumerate(batch)]
    parts = (batch[:split], batch[split:])
    recent = RecentIds()
    events = []
    for part in parts:
        events += spans_to_events([item[0] for item in part], GENAI, Drops(), recent)
    for event in events:
        meta = event["metadata"]
        assert meta["provider_name"] in ("openai", "gcp.gemini", "gcp.vertex_ai", "anthropic")
        assert event["provider"] == (
            "google" if meta["provider_name"].startswith("gcp.") else meta["provider_name"]
        )

    # One event per (provider, response id); every span without a response id is billed.
    keyed = [(e["metadata"]["provider_name"], e["metadata"]["response_id"]) for e in events]
    with_id = [k for k in keyed if k[1]]
    assert len(with_id) == len(set(with_id))
    assert set(with_id) == {(provider, rid) for _, _, provider, rid in batch if rid}
    assert len(keyed) - len(with_id) == sum(1 for *_, rid in batch if not rid)

    # Within a batch our own span wins; across batches the first billed wins.
    billed = {e["metadata"]["span_id"] for e in events}
    for index, part in enumerate(parts):
        for key in {(p, r) for _, _, p, r in part if r}:
            candidates = [item for item in part if (item[2], item[3]) == key]
            winner = ([item for item in candidates if item[1]] or candidates)[0][0]
            billed_before = index == 1 and any((i[2], i[3]) == key for i in parts[0])
            assert (f"{winner.context.span_id:016x}" in billed) is not billed_before


@cases(100)
@given(span=genai_spans())
def test_genai_cache_creation_is_the_old_name_of_cache_write(span):
    span = span[0]
    event = span_to_event(span, GENAI, Drops())
    assert event is not None
    assert_event_shape(event, span)
    attrs = span.attributes or {}
    assert event["metadata"]["cache_write_input_tokens"] == attrs.get(
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, 0
    )


def test_empty_error_type_of_a_failed_span_is_not_billed_as_empty():
    """A failed call's event names its error (SPEC 5): an empty ``error.type`` is no name.

    Found by ``test_our_scope_spans_with_an_operation_are_always_billed``: the exporter keeps
    ``""`` and so never falls back to ``"_OTHER"``.
    """
    span = ReadableSpan(
        "chat",
        context=SpanContext(1, 2, is_remote=False),
        attributes={sc.GEN_AI_OPERATION_NAME: "chat", sc.ERROR_TYPE: ""},
        status=Status(StatusCode.ERROR),
        end_time=10**18,
        instrumentation_scope=InstrumentationScope(sc.SCOPE_NAME, "1"),
    )
    event = span_to_event(span, INSTRUMENTOR, Drops())
    assert event is not None
    assert event["metadata"]["error_type"] == "_OTHER"


def test_instrumentor_source_ignores_foreign_scopes_and_non_genai_spans():
    attrs = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_USAGE_INPUT_TOKENS: 3}
    foreign = ReadableSpan(
        "chat", attributes=attrs, instrumentation_scope=InstrumentationScope("anthropic", "1")
    )
    plain = ReadableSpan(
        "GET",
        attributes={"http.method": "GET"},
        instrumentation_scope=InstrumentationScope(sc.SCOPE_NAME),
    )
    assert span_to_event(foreign, INSTRUMENTOR, Drops()) is None
    assert span_to_event(plain, INSTRUMENTOR, Drops()) is None
    assert span_to_event(plain, GENAI, Drops()) is None
    assert span_to_event(foreign, GENAI, Drops()) is not None
