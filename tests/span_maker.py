"""Real finished spans of our instrumentation scope, and the environment, the calls and the
running of a child process that bills them: shared by the exporter, fault and soak tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from opentelemetry_instrumentation_cmdrdata import customer_context, semconv
from tests.servers.cmdrdata_server import TEST_API_KEY

ROOT = Path(__file__).resolve().parent.parent

BASE_ATTRS: dict[str, Any] = {
    semconv.GEN_AI_OPERATION_NAME: "chat",
    semconv.GEN_AI_PROVIDER_NAME: "openai",
    semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
    semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
    semconv.GEN_AI_USAGE_INPUT_TOKENS: 1200,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 300,
}


def usage_spans(
    n: int = 1,
    scope: str = semconv.SCOPE_NAME,
    error: bool = False,
    service: str = "checkout-api",
    name: str = "chat gpt-4o-mini",
    **attributes: Any,
) -> list[ReadableSpan]:
    """``n`` ended spans; keyword names use ``__`` for ``.`` (``cmdrdata__customer_id=``),
    and a None value removes a base attribute."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(scope)
    attrs = {**BASE_ATTRS, **{k.replace("__", "."): v for k, v in attributes.items()}}
    attrs = {k: v for k, v in attrs.items() if v is not None}
    for _ in range(n):
        with tracer.start_as_current_span(name, attributes=attrs) as span:
            if error:
                span.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    return list(memory.get_finished_spans())


def child_env(endpoint: str, spool_dir: Path) -> dict[str, str]:
    """The environment of a child process exporting to ``endpoint`` through ``spool_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMDRDATA_")}
    env.update(
        CMDRDATA_API_KEY=TEST_API_KEY,
        CMDRDATA_ENDPOINT=endpoint,
        CMDRDATA_SPOOL_DIR=str(spool_dir),
        PYTHONPATH=str(ROOT),
    )
    return env


def chat_as(client: Any, customers: Iterable[str]) -> None:
    """One instrumented chat completion per customer id, each inside its ``customer_context``."""
    for customer in customers:
        with customer_context(customer):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )


def run_python(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python *args`` from the project root with ``env``; output captured as text."""
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
