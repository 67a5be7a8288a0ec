"""Spans/s into the spool through ``cmdrdata-exporter serve``'s request path, on one core.

    python benchmarks/serve_throughput.py [requests] [spans-per-request]

Each request is a real OTLP protobuf body of GenAI spans (encoded by the OpenTelemetry OTLP
exporter's own encoder) handled by the receiver's ASGI app in this process: decode, convert,
one-event-per-call ledger, SQLite spool. No sender (no key), so the number is intake alone.
Prints spans/s (wall clock and per CPU-second) and the process's peak RSS after the first and the last quarter (flat = no leak).
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from cmdrdata_exporter.exporter import CmdrDataSpanExporter
from cmdrdata_exporter.serve import Receiver, durable_biller
from tests.span_maker import usage_spans


def main(requests: int = 200, per_request: int = 500) -> None:
    spans = usage_spans(per_request, scope="opentelemetry.instrumentation.openai.v1")
    with tempfile.TemporaryDirectory() as spool:
        exporter = CmdrDataSpanExporter(
            span_source="genai", bill_unsampled=False, spool_dir=spool, api_key=None
        )
        app = Receiver(durable_biller(exporter), None, 32 << 20)
        statuses: list[int] = []

        def body_for(i: int) -> bytes:  # fresh trace ids per request: every span a new call
            for span in spans:
                span._context = span.context.__class__(
                    span.context.trace_id + 1, span.context.span_id, False
                )
            return encode_spans(spans).SerializeToString()

        async def post(body: bytes) -> None:
            scope = {
                "type": "http",
                "path": "/v1/traces",
                "method": "POST",
                "headers": [
                    (b"content-type", b"application/x-protobuf"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
            sent = [{"type": "http.request", "body": body, "more_body": False}]

            async def receive():
                return sent.pop()

            async def send(message):
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            await app(scope, receive, send)

        rss = []
        elapsed = cpu = 0.0

        async def run_all() -> None:  # one event loop, as under uvicorn
            nonlocal elapsed, cpu
            for i in range(requests):
                body = body_for(i)  # encoding is the client's work: not timed
                start, cpu_start = time.perf_counter(), time.process_time()
                await post(body)
                elapsed += time.perf_counter() - start
                cpu += time.process_time() - cpu_start
                if i in (requests // 4, requests - 1):
                    rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)

        asyncio.run(run_all())
        queued = exporter.status()["queued"]
        exporter.shutdown(timeout_millis=100)
    total = requests * per_request
    assert statuses == [200] * requests and queued == total, (set(statuses), queued)
    print(f"{total} GenAI spans in {elapsed:.2f} s: {total / elapsed:,.0f} spans/s into the spool")
    # On a shared machine the wall clock counts other processes' turns too; CPU seconds of
    # this process (all its threads) say what one core does.
    print(f"CPU {cpu:.2f} s: {total / cpu:,.0f} spans per CPU-second")
    print(f"peak RSS after 1/4: {rss[0]} MiB, at the end: {rss[1]} MiB")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
