"""The same spans to your OTLP collector (Jaeger, Tempo, Honeycomb, ...) and to cmdrdata.

One TracerProvider, two BatchSpanProcessors: each exporter gets every span, independently (a
slow collector never delays billing, and the other way round). Only this package's GenAI spans
become usage events; everything else your app traces goes to the collector alone.

    pip install opentelemetry-instrumentation-cmdrdata openai opentelemetry-exporter-otlp-proto-http
    export CMDRDATA_API_KEY=cmd-live-v1-...   OPENAI_API_KEY=sk-...
    export OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318   # your collector (OTLP/HTTP)
    python examples/otlp_alongside.py

``OPENAI_BASE_URL`` and ``CMDRDATA_ENDPOINT`` point it at local stand-ins
(``python examples/local_servers.py`` also runs a local OTLP receiver that prints spans).
"""

from __future__ import annotations

import os

import openai
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from cmdrdata_exporter import CmdrDataSpanExporter
from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor, customer_context


def main() -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "otlp-alongside-example"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # OTEL_EXPORTER_OTLP_*
    provider.add_span_processor(BatchSpanProcessor(CmdrDataSpanExporter()))  # CMDRDATA_*
    trace.set_tracer_provider(provider)  # so your own spans use it too
    CmdrDataInstrumentor().instrument(tracer_provider=provider)

    tracer = trace.get_tracer("otlp-alongside-example")
    client = openai.OpenAI()
    # Your own span around the request: the collector sees the LLM call nested inside it.
    with tracer.start_as_current_span("handle-ticket"), customer_context("acme-corp"):
        reply = client.chat.completions.create(
            model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
            messages=[{"role": "user", "content": "Draft a reply to ticket #4521."}],
        )
    print(f"acme-corp: {reply.usage.total_tokens} tokens, traced and billed")

    provider.shutdown()  # flush both exporters


if __name__ == "__main__":
    main()
