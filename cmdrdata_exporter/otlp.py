"""OTLP/HTTP trace bodies (protobuf or JSON) -> ``SpanRecord``s that ``events`` can bill.

Only spans that may be a model call are built: a collector forwards every span of a service
(HTTP, database, ...), and building records for those would cost more than billing the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import Status, StatusCode

from cmdrdata_exporter.foreign import SpanRecord

# A span is a candidate when one of these keys is among its attributes.
_MARKERS = frozenset({"gen_ai.operation.name", "openinference.span.kind", "llm.request.type"})
_OK, _ERROR = Status(StatusCode.UNSET), Status(StatusCode.ERROR)


class DecodeError(ValueError):
    """The body is not an OTLP trace export request."""


class _Ids:
    __slots__ = ("span_id", "trace_id")

    def __init__(self, trace_id: int, span_id: int) -> None:
        self.trace_id = trace_id
        self.span_id = span_id


class _Named:
    """A resource (``attributes``) or an instrumentation scope (``name``)."""

    __slots__ = ("attributes", "name", "version")

    def __init__(self, name: str = "", attributes: dict[str, Any] | None = None) -> None:
        self.name = name
        self.version = None
        self.attributes = attributes or {}


def _attributes(kvs: Any) -> dict[str, Any]:
    out = {}
    for kv in kvs:
        v = kv.value
        kind = v.WhichOneof("value")
        if kind == "string_value":  # nearly every attribute: no second call
            out[kv.key] = v.string_value
        elif kind == "int_value":
            out[kv.key] = v.int_value
        else:
            out[kv.key] = _value(v)
    return out


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in v.array_value.values)
    if kind in (None, "kvlist_value", "bytes_value"):
        return None
    return getattr(v, kind)


def decode_protobuf(body: bytes) -> list[SpanRecord]:
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except Exception as exc:  # the protobuf runtime raises its own DecodeError
        raise DecodeError(f"not an OTLP protobuf trace request ({type(exc).__name__})") from None
    records: list[SpanRecord] = []
    for rs in request.resource_spans:
        resource: _Named | None = None
        for ss in rs.scope_spans:
            scope: _Named | None = None
            for span in ss.spans:
                if not any(kv.key in _MARKERS for kv in span.attributes):
                    continue
                if resource is None:
                    resource = _Named(
                        "", {kv.key: _value(kv.value) for kv in rs.resource.attributes}
                    )
                if scope is None:
                    scope = _Named(ss.scope.name)
                trace_id = int.from_bytes(span.trace_id, "big")
                parent = span.parent_span_id
                records.append(
                    SpanRecord(
                        _attributes(span.attributes),
                        _Ids(trace_id, int.from_bytes(span.span_id, "big")),
                        _Ids(trace_id, int.from_bytes(parent, "big")) if parent else None,
                        span.start_time_unix_nano or None,
                        span.end_time_unix_nano or None,
                        _ERROR if span.status.code == 2 else _OK,
                        resource,
                        scope,
                    )
                )
    return records


def _json_value(v: dict[str, Any]) -> Any:
    for kind, item in v.items():
        if kind == "stringValue" or kind == "boolValue" or kind == "doubleValue":
            return item
        if kind == "intValue":
            return int(item)  # OTLP/JSON sends 64-bit integers as strings
        if kind == "arrayValue":
            return tuple(_json_value(x) for x in item.get("values", ()))
    return None


def _attrs(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: _json_value(kv.get("value") or {}) for kv in items}


def _hex_id(text: Any) -> int:
    return int(text, 16) if text else 0


def decode_json(body: bytes) -> list[SpanRecord]:
    """OTLP/JSON: ids are hex strings, enums numbers, 64-bit integers strings."""
    try:
        request = json.loads(body)
        records: list[SpanRecord] = []
        for rs in request.get("resourceSpans", ()):
            resource = _Named("", _attrs((rs.get("resource") or {}).get("attributes", ())))
            for ss in rs.get("scopeSpans", ()):
                scope = _Named((ss.get("scope") or {}).get("name", ""))
                for span in ss.get("spans", ()):
                    attrs = span.get("attributes", ())
                    if not any(kv.get("key") in _MARKERS for kv in attrs):
                        continue
                    trace_id = _hex_id(span.get("traceId"))
                    parent = _hex_id(span.get("parentSpanId"))
                    code = (span.get("status") or {}).get("code")
                    records.append(
                        SpanRecord(
                            _attrs(attrs),
                            _Ids(trace_id, _hex_id(span.get("spanId"))),
                            _Ids(trace_id, parent) if parent else None,
                            int(span.get("startTimeUnixNano") or 0) or None,
                            int(span.get("endTimeUnixNano") or 0) or None,
                            _ERROR if code in (2, "STATUS_CODE_ERROR") else _OK,
                            resource,
                            scope,
                        )
                    )
        return records
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise DecodeError(f"not an OTLP/JSON trace request ({type(exc).__name__})") from None
