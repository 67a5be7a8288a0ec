"""An ordinary app with no OpenTelemetry code, meant to run under ``opentelemetry-instrument``.

``opentelemetry-instrument`` finds our instrumentor and exporter by their entry-point name
(``cmdrdata``), sets OpenTelemetry up from ``OTEL_*`` variables, and wraps every installed SDK
before this file runs. Spans go to your collector (OTLP) and, as usage events, to cmdrdata::

    pip install opentelemetry-instrumentation-cmdrdata openai \\
        opentelemetry-distro opentelemetry-exporter-otlp-proto-http
    export CMDRDATA_API_KEY=cmd-live-v1-...   OPENAI_API_KEY=sk-...
    export OTEL_SERVICE_NAME=auto-example
    export OTEL_TRACES_EXPORTER=otlp,cmdrdata
    export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf      # the distro's default is gRPC
    export OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318
    opentelemetry-instrument python examples/auto_instrument_app.py

Without a collector, bill only, and switch the distro's OTLP metrics and logs off (they default
to OTLP too, and a missing OTLP exporter stops all of OpenTelemetry)::

    OTEL_TRACES_EXPORTER=cmdrdata OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \\
        opentelemetry-instrument python examples/auto_instrument_app.py

The SDKs read ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` themselves, so the same command runs
against local stand-ins (``python examples/local_servers.py``). An Anthropic call is made too
when ``ANTHROPIC_API_KEY`` is set.
"""

from __future__ import annotations

import os

import openai

from opentelemetry_instrumentation_cmdrdata import customer_context

# customer_context only sets OpenTelemetry baggage: without instrumentation it is harmless.
# (Per-call ``customer_id=`` also works, but only while the instrumentation is active: if
# OpenTelemetry failed to start, the SDK itself rejects the unknown keyword.)


def main() -> None:
    messages = [{"role": "user", "content": "Suggest a name for a billing dashboard."}]
    client = openai.OpenAI()
    for customer in ("acme-corp", "globex"):
        with customer_context(customer):
            reply = client.chat.completions.create(
                model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), messages=messages
            )
        print(f"{customer} (openai): {reply.usage.total_tokens} tokens")

    if os.environ.get("ANTHROPIC_API_KEY"):
        import anthropic

        with customer_context("initech"):
            message = anthropic.Anthropic().messages.create(
                model=os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-4-5"),
                max_tokens=200,
                messages=messages,
            )
        used = message.usage.input_tokens + message.usage.output_tokens
        print(f"initech (anthropic): {used} tokens")


if __name__ == "__main__":
    main()
