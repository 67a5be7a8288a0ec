"""The whole path on one machine: instrumented OpenAI calls -> spans -> cmdrdata usage events.

It starts two local servers on 127.0.0.1 — one that speaks OpenAI's API and one that speaks
cmdrdata's events API — then makes real OpenAI SDK calls for two customers (one of them
streamed), prints each span with its attributes, the usage events exactly as the cmdrdata server
received them, and finally ``cmdrdata-exporter status``. No key or network access is needed.

Run from the repository root:  python examples/demo.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the local fake servers live in tests/servers

import openai  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from cmdrdata_exporter import CmdrDataSpanExporter  # noqa: E402
from opentelemetry_instrumentation_cmdrdata import (  # noqa: E402
    CmdrDataInstrumentor,
    customer_context,
)
from tests.servers.cmdrdata_server import TEST_API_KEY, CmdrDataServer  # noqa: E402
from tests.servers.openai_server import OpenAIFakeServer, OpenAIUsage  # noqa: E402


class PrintSpans(SpanExporter):
    """Print each finished span and its attributes (what an OTLP collector would receive)."""

    def export(self, spans):
        for span in spans:
            print(f"\nspan: {span.name!r} (scope {span.instrumentation_scope.name})")
            for key, value in sorted(span.attributes.items()):
                print(f"    {key} = {value!r}")
        return SpanExportResult.SUCCESS


def main() -> int:
    spool_dir = tempfile.mkdtemp(prefix="cmdrdata-demo-")
    with OpenAIFakeServer() as llm, CmdrDataServer() as cmdrdata:
        llm.configure(
            usage=OpenAIUsage(prompt_tokens=1200, completion_tokens=300, cached_tokens=1000)
        )

        provider = TracerProvider(resource=Resource.create({"service.name": "demo-checkout-api"}))
        provider.add_span_processor(SimpleSpanProcessor(PrintSpans()))
        exporter = CmdrDataSpanExporter(
            api_key=TEST_API_KEY, endpoint=cmdrdata.url, spool_dir=spool_dir
        )
        provider.add_span_processor(BatchSpanProcessor(exporter))
        CmdrDataInstrumentor().instrument(tracer_provider=provider)

        client = openai.OpenAI(base_url=llm.url + "/v1", api_key="sk-demo", max_retries=0)
        messages = [{"role": "user", "content": "Summarise my order"}]

        with customer_context("acme-corp", plan="pro"):
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        print(f"\nacme-corp got: {reply.choices[0].message.content!r}")

        with customer_context("globex@example.com", plan="free"):
            stream = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, stream=True
            )
            text = "".join(
                chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices
            )
        print(f"globex@example.com got (streamed): {text!r}")

        provider.force_flush()
        if not cmdrdata.wait_for(2, timeout=15):
            print("the usage events did not arrive", file=sys.stderr)
            return 1
        provider.shutdown()

        print(f"\n{len(cmdrdata.events)} usage events received by the local cmdrdata server:")
        for event in cmdrdata.events:
            print(json.dumps(event, indent=2, ensure_ascii=False))

        print("\n$ cmdrdata-exporter status")
        env = {
            **os.environ,
            "CMDRDATA_API_KEY": TEST_API_KEY,
            "CMDRDATA_ENDPOINT": cmdrdata.url,
            "CMDRDATA_SPOOL_DIR": spool_dir,
        }
        status = subprocess.run(
            [sys.executable, "-m", "cmdrdata_exporter", "status"], env=env, check=False
        )
        return status.returncode


if __name__ == "__main__":
    raise SystemExit(main())
