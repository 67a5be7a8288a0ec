"""Manual set-up: a TracerProvider, the cmdrdata exporter, the instrumentor, and customers.

This is everything the package needs when you configure OpenTelemetry in code. The LLM calls
themselves are unchanged; ``customer_context`` says whom each one is billed to.

Run it against the real services::

    pip install opentelemetry-instrumentation-cmdrdata openai
    export CMDRDATA_API_KEY=cmd-live-v1-...   OPENAI_API_KEY=sk-...
    python examples/manual_setup.py

Every setting comes from the environment, so the same file runs against local stand-ins:
``OPENAI_BASE_URL`` (read by the OpenAI SDK), ``CMDRDATA_ENDPOINT``, ``CMDRDATA_SPOOL_DIR``,
and ``OPENAI_MODEL`` (default ``gpt-4o-mini``). ``python examples/local_servers.py`` starts the
stand-ins and prints the variables to export; ``tests/test_examples.py`` runs this file.
"""

from __future__ import annotations

import os

import openai
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from cmdrdata_exporter import CmdrDataSpanExporter
from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor, customer_context

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")


def main() -> None:
    # 1. Where spans go. CmdrDataSpanExporter() reads CMDRDATA_API_KEY and friends.
    provider = TracerProvider(resource=Resource.create({"service.name": "manual-setup-example"}))
    provider.add_span_processor(BatchSpanProcessor(CmdrDataSpanExporter()))

    # 2. Wrap the installed SDKs (OpenAI, Anthropic, Gemini: whichever are installed).
    CmdrDataInstrumentor().instrument(tracer_provider=provider)

    # 3. Your code, unchanged, with the customer around each piece of work.
    client = openai.OpenAI()
    messages = [{"role": "user", "content": "Write a haiku about invoices."}]
    for customer, plan in (("acme-corp", "pro"), ("globex", "free")):
        with customer_context(customer, plan=plan):
            reply = client.chat.completions.create(model=MODEL, messages=messages)
        print(f"{customer}: {reply.usage.total_tokens} tokens billed")

    # 4. On exit: flush. Anything cmdrdata did not acknowledge yet stays in the spool
    #    directory and is delivered by the next process that uses it.
    provider.shutdown()


if __name__ == "__main__":
    main()
