"""A tiny OTLP/HTTP trace receiver: the "collector backend" the tests can look into.

It accepts ``POST /v1/traces`` with an ``ExportTraceServiceRequest`` as protobuf (what the
OpenTelemetry Python exporter and rotel send, gzip or not) or as OTLP/JSON, answers with an
empty ``ExportTraceServiceResponse`` and keeps every span, decoded into :class:`ReceivedSpan`::

    with OtlpReceiver() as receiver:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url   # the SDK appends /v1/traces
        ...
        spans = receiver.wait_for_spans(lambda s: s.name.startswith("chat "), count=2)

Metrics and logs posted to ``/v1/metrics`` and ``/v1/logs`` are accepted and ignored, so an
app that exports them too does not log errors.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.servers.base import QuietHandler

__all__ = ["OtlpReceiver", "ReceivedSpan"]


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as a collector backend saw it."""

    name: str
    trace_id: str  # 32 lower-case hex digits
    span_id: str  # 16 lower-case hex digits
    parent_span_id: str  # "" for a root span
    kind: int  # opentelemetry.proto.trace.v1.Span.SpanKind value (3 = CLIENT)
    scope: str
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    status_code: int = 0  # 0 unset, 1 ok, 2 error


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def decode_spans(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        kind=span.kind,
                        scope=scope_spans.scope.name,
                        attributes=_attributes(span.attributes),
                        resource=resource,
                        status_code=span.status.code,
                    )
                )
    return spans


class _Handler(QuietHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        path = self.path.split("?")[0]
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            if path == "/v1/traces":
                request = ExportTraceServiceRequest()
                if content_type == "application/json":
                    json_format.Parse(body.decode(), request)
                else:
                    request.ParseFromString(body)
                self.server.owner._record(path, decode_spans(request))
            else:
                self.server.owner._record(path, [])
        except Exception as exc:  # a malformed request is the sender's bug: say so
            self.server.owner.errors.append(f"{path}: {exc!r}")
            self._reply(400, b"", "text/plain")
            return
        if content_type == "application/json":
            self._reply(200, b"{}", "application/json")
        else:
            self._reply(200, ExportTraceServiceResponse().SerializeToString(), content_type)

    def _reply(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type or "application/x-protobuf")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: OtlpReceiver):
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class OtlpReceiver:
    """Listens on 127.0.0.1 (a free port); use as a context manager."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests: list[str] = []  # the path of every POST, in order
        self.errors: list[str] = []
        self._changed = threading.Condition()
        self._httpd: _Server | None = None

    def start(self) -> OtlpReceiver:
        self._httpd = _Server(self)
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The base URL, as ``OTEL_EXPORTER_OTLP_ENDPOINT`` wants it (no ``/v1/traces``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        return self.url + "/v1/traces"

    def _record(self, path: str, spans: list[ReceivedSpan]) -> None:
        with self._changed:
            self.requests.append(path)
            self.spans.extend(spans)
            self._changed.notify_all()

    def wait_for_spans(
        self,
        match: Callable[[ReceivedSpan], bool] = lambda span: True,
        count: int = 1,
        timeout: float = 15.0,
    ) -> list[ReceivedSpan]:
        """The received spans that ``match``, once there are at least ``count`` (or at timeout)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [span for span in self.spans if match(span)]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    return found
                self._changed.wait(left)
