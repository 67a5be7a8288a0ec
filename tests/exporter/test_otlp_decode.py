"""OTLP bodies -> the records ``events`` bills: what the OpenTelemetry OTLP encoder writes comes
back intact, and no body of any shape raises anything but ``DecodeError``."""

from __future__ import annotations

import base64
import json

from google.protobuf.json_format import MessageToDict
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from cmdrdata_exporter.otlp import DecodeError, decode_json, decode_protobuf
from tests.span_maker import BASE_ATTRS


def _spans() -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("openinference.instrumentation.openai")
    attrs = {**BASE_ATTRS, "gen_ai.response.finish_reasons": ("stop", "length"), "x.f": 0.5}
    with tracer.start_as_current_span("outer", attributes=attrs):
        with tracer.start_as_current_span("http"):  # no GenAI marker: not decoded
            pass
        with tracer.start_as_current_span("inner", attributes=attrs) as inner:
            inner.set_status(StatusCode.ERROR)
    return list(memory.get_finished_spans())


def _check(records, spans) -> None:
    genai = [s for s in spans if s.name != "http"]
    assert len(records) == len(genai) == 2
    for record, span in zip(records, genai, strict=True):
        assert dict(record.attributes) == dict(span.attributes)
        assert (record.context.trace_id, record.context.span_id) == (
            span.context.trace_id,
            span.context.span_id,
        )
        assert (record.parent.span_id if record.parent else None) == (
            span.parent.span_id if span.parent else None
        )
        assert (record.start_time, record.end_time) == (span.start_time, span.end_time)
        assert record.status.status_code is (
            StatusCode.ERROR if span.status.status_code is StatusCode.ERROR else StatusCode.UNSET
        )
        assert record.instrumentation_scope.name == span.instrumentation_scope.name
        assert record.resource.attributes == dict(span.resource.attributes)


def test_protobuf_from_the_otlp_encoder_decodes_intact():
    spans = _spans()
    _check(decode_protobuf(encode_spans(spans).SerializeToString()), spans)


def test_json_in_otlp_json_form_decodes_intact():
    spans = _spans()
    body = MessageToDict(encode_spans(spans))
    # OTLP/JSON writes ids as hex, where protobuf's JSON mapping writes base64.
    for rs in body["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
                if "status" in span and span["status"].get("code") == "STATUS_CODE_ERROR":
                    span["status"]["code"] = 2
    _check(decode_json(json.dumps(body).encode()), spans)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_decode_or_raise_decode_error(body):
    for decode in (decode_protobuf, decode_json):
        try:
            records = decode(body)
        except DecodeError:
            continue
        assert isinstance(records, list)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["resourceSpans", "x"]), json_values, max_size=2))
def test_any_json_shape_decodes_or_raises_decode_error(document):
    try:
        decode_json(json.dumps(document).encode())
    except DecodeError:
        pass
