"""Secrets audit: every feature run with DEBUG logging everywhere, then everything grepped.

Secrets: the cmdrdata API key (whole, and its secret part) and ``CMDRDATA_BAGGAGE_SECRET`` must
never appear in any log record (DEBUG included), stdout/stderr (ours and the CLI's, run as
subprocesses with the key in their environment), any finished span (attributes, events, status
descriptions, names), any event the fake cmdrdata received, or any exception message or repr.

Customer ids never go to a provider: every request the fake OpenAI, Anthropic and Gemini servers
received (all headers, all bodies) is grepped for the customer id and for ``cmdrdata`` baggage.
The SDKs here send through ``httpx2``, which ``opentelemetry-instrumentation-httpx`` does not
hook, so the SDK clients get a request hook that does what HTTP-client instrumentation does:
inject the current context (``traceparent`` and ``baggage``) into every request.

And the exporter's own requests to cmdrdata (plain ``httpx``, which the httpx instrumentation
*does* hook here) carry no ``traceparent`` / ``baggage`` headers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cmdrdata_exporter import CmdrDataSpanExporter
from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor, customer_context
from opentelemetry_instrumentation_cmdrdata import customer as customer_module
from tests.servers.cmdrdata_server import TEST_API_KEY

CUSTOMER = "cust-secret-XYZ"
KEY_SECRET = TEST_API_KEY.split("-", 3)[3]  # what follows "cmd-live-v1-"
BAGGAGE_SECRET = "bsecret-7Qk2-mustNeverShow-91x"
LOGGERS = (
    "",
    "opentelemetry_instrumentation_cmdrdata",
    "cmdrdata_exporter",
    "openai",
    "anthropic",
    "google_genai",
    "httpx",
    "httpcore",
    "opentelemetry",
)
FAST = {
    "timeout": 0.5,
    "_backoff_base": 0.01,
    "_backoff_cap": 0.1,
    "_auth_retry": 0.1,
    "_poll_interval": 0.05,
    "shutdown_timeout": 2.0,
}
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for name in list(os.environ):
        if name.startswith("CMDRDATA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CMDRDATA_BAGGAGE_SECRET", BAGGAGE_SECRET)
    customer_module._reload_settings()
    yield
    monkeypatch.delenv("CMDRDATA_BAGGAGE_SECRET")
    customer_module._reload_settings()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def record_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every log record, fully formatted (message, arguments, traceback)."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts = []
    for record in caplog.records:
        texts.append(formatter.format(record))
        texts.append(repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            texts.append(repr(record.exc_info[1]))
    return texts


def span_texts(spans: list[Any]) -> list[str]:
    texts = []
    for span in spans:
        texts.append(span.name)
        texts.append(span.to_json())
        texts.append(repr(dict(span.attributes or {})))
        texts.append(str(span.status.description))
        for event in span.events:
            texts.append(event.name + repr(dict(event.attributes or {})))
    return texts


def assert_no_secret(texts: list[str], what: str) -> None:
    joined = "\n".join(t for t in texts if t)
    for needle in (TEST_API_KEY, KEY_SECRET, BAGGAGE_SECRET):
        assert needle not in joined, f"{needle[:6]}... found in {what}"


def _inject(request: Any) -> None:
    propagate.inject(request.headers)


async def _ainject(request: Any) -> None:
    propagate.inject(request.headers)


def propagating(module: Any, flavour: str = "sync") -> Any:
    """An SDK's default HTTP client that propagates the context like HTTP instrumentation."""
    if flavour == "sync":
        return module.DefaultHttpxClient(event_hooks={"request": [_inject]})
    return module.DefaultAsyncHttpxClient(event_hooks={"request": [_ainject]})


def assert_provider_requests_clean(server: Any) -> None:
    assert server.requests, "the fake provider received nothing"
    for request in server.requests:
        headers = "\n".join(f"{k}: {v}" for k, v in request.headers.raw_items())
        body = request.raw_body.decode("utf-8", "replace")
        assert CUSTOMER not in headers and CUSTOMER not in body, request.path
        assert "cust-secret" not in headers.lower() + body.lower()
        for value in request.headers.get_all("baggage"):
            assert "cmdrdata" not in value, value
        assert BAGGAGE_SECRET not in headers + body


# -- the providers, every way they are called ---------------------------------------------------


def openai_calls(server: Any, errors: list[BaseException]) -> None:
    import openai

    client = server.client(http_client=propagating(openai))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        pass
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        stream.get_final_completion()
    client.responses.create(model="gpt-4o", input="hi")
    for _ in client.responses.create(model="gpt-4o", input="hi", stream=True):
        pass
    client.embeddings.create(model="text-embedding-3-small", input="hi")
    client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    # Per-call attribution too.
    client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, customer_id=CUSTOMER, cmdrdata_metadata={"a": 1}
    )
    server.next_error(429)
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    except Exception as exc:
        errors.append(exc)
    server.next(error_after=2)
    try:
        for _ in client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        ):
            pass
    except Exception as exc:
        errors.append(exc)


async def openai_async_calls(server: Any) -> None:
    import openai

    client = server.async_client(http_client=propagating(openai, "async"))
    await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    async for _ in stream:
        pass
    await client.embeddings.create(model="text-embedding-3-small", input="hi")


def anthropic_calls(server: Any, errors: list[BaseException]) -> None:
    import anthropic

    client = server.client(http_client=propagating(anthropic))
    kwargs = {"model": "claude-test-model", "max_tokens": 20, "messages": MESSAGES}
    client.messages.create(**kwargs)
    for _ in client.messages.create(**kwargs, stream=True):
        pass
    with client.messages.stream(**kwargs) as stream:
        for _ in stream.text_stream:
            pass
    client.beta.messages.create(**kwargs)
    client.messages.count_tokens(model="claude-test-model", messages=MESSAGES)
    server.next_error(529)
    try:
        client.messages.create(**kwargs)
    except Exception as exc:
        errors.append(exc)


async def anthropic_async_calls(server: Any) -> None:
    import anthropic

    client = server.async_client(http_client=propagating(anthropic, "async"))
    kwargs = {"model": "claude-test-model", "max_tokens": 20, "messages": MESSAGES}
    await client.messages.create(**kwargs)
    async with client.messages.stream(**kwargs) as stream:
        await stream.get_final_message()


def gemini_calls(client: Any, server: Any, errors: list[BaseException]) -> None:
    client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    for _ in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"):
        pass
    client.models.embed_content(model="text-embedding-004", contents="hi")
    client.models.count_tokens(model="gemini-2.5-flash", contents="hi")
    server.next_error(503)
    try:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    except Exception as exc:
        errors.append(exc)


async def gemini_async_calls(client: Any) -> None:
    await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    stream = await client.aio.models.generate_content_stream(
        model="gemini-2.5-flash", contents="hi"
    )
    async for _ in stream:
        pass


def test_secrets_never_leak_and_customers_never_reach_providers(
    debug_logs,
    capfd,
    tmp_path,
    openai_server,
    anthropic_server,
    gemini_server,
    cmdrdata_server,
):
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    exporter = CmdrDataSpanExporter(
        api_key=TEST_API_KEY,
        endpoint=cmdrdata_server.url,
        spool_dir=tmp_path / "spool",
        **FAST,
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # 503 twice, then 422 for the Anthropic events: retries and rejections are logged.
    cmdrdata_server.set_mode(
        fail_next=2, fail_status=503, reject=lambda e: e.get("provider") == "anthropic"
    )

    httpx_instrumentor = HTTPXClientInstrumentor()
    httpx_instrumentor.instrument(tracer_provider=provider)
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    errors: list[BaseException] = []
    gemini = gemini_server.client()
    try:
        # An app's own baggage rides along; ours must be stripped before the provider.
        token = otel_context.attach(otel_baggage.set_baggage("app.tenant", "t1"))
        try:
            with customer_context(CUSTOMER, plan="pro", region="eu"):
                openai_calls(openai_server, errors)
                anthropic_calls(anthropic_server, errors)
                gemini_calls(gemini, gemini_server, errors)

                async def all_async() -> None:
                    await openai_async_calls(openai_server)
                    await anthropic_async_calls(anthropic_server)
                    await gemini_async_calls(gemini)

                asyncio.run(all_async())
        finally:
            otel_context.detach(token)
        assert exporter.force_flush(5000)
        # 401: delivery pauses, keeps the events, logs it.
        cmdrdata_server.set_mode(unauthorized=True)
        with customer_context(CUSTOMER):
            openai_server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        exporter.force_flush(500)
        cmdrdata_server.set_mode(unauthorized=False)
        deadline = time.monotonic() + 10
        while exporter.status()["queued"] and time.monotonic() < deadline:
            exporter.force_flush(500)
            time.sleep(0.05)
        status = exporter.status()
        assert status["queued"] == 0, status
    finally:
        instrumentor.uninstrument()
        httpx_instrumentor.uninstrument()
        exporter.shutdown(2000)

    spans = memory.get_finished_spans()
    ours = [s for s in spans if s.attributes.get("cmdrdata.customer_id") == CUSTOMER]
    assert len(ours) >= 20, "the audit must have run the instrumented calls"
    assert len(errors) == 4
    assert any(e["customer_id"] == CUSTOMER for e in cmdrdata_server.events)

    out, err = capfd.readouterr()
    texts = [*record_texts(debug_logs), out, err]
    texts += span_texts(spans)
    texts += [json.dumps(e, ensure_ascii=False) for e in cmdrdata_server.events]
    texts += [json.dumps(r.body, ensure_ascii=False, default=str) for r in cmdrdata_server.requests]
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [repr(exporter), str(exporter.settings), json.dumps(status, default=str)]
    assert any("HTTP" in t or "422" in t for t in texts), "the faults were exercised"
    assert_no_secret(texts, "logs, output, spans, events or exceptions")

    for server in (openai_server, anthropic_server, gemini_server):
        assert_provider_requests_clean(server)
    # Propagation was on: the app's own baggage (not ours) reached the providers.
    for server in (openai_server, anthropic_server):
        assert any("app.tenant" in v for r in server.requests for v in r.headers.get_all("baggage"))

    assert cmdrdata_server.requests
    for request in cmdrdata_server.requests:
        names = {name.lower() for name in request.headers}
        assert "traceparent" not in names and "baggage" not in names, request.headers
        assert request.headers.get("Authorization") == f"Bearer {TEST_API_KEY}"


def test_bad_keys_and_the_cli_never_echo_secrets(debug_logs, capfd, tmp_path, cmdrdata_server):
    spool = tmp_path / "spool"
    texts: list[str] = []
    malformed = "cmd-live-v1-" + KEY_SECRET + " oops"
    for bad in (malformed, TEST_API_KEY + "!", "tk-" + KEY_SECRET):
        with pytest.raises(ValueError) as info:
            CmdrDataSpanExporter(api_key=bad, spool_dir=spool)
        texts += [str(info.value), repr(info.value)]

    # A bad key from the environment: one clear log line, no exception, no echo.
    os.environ["CMDRDATA_API_KEY"] = malformed
    try:
        from_env = CmdrDataSpanExporter(spool_dir=spool, endpoint=cmdrdata_server.url, **FAST)
        texts += [
            repr(from_env),
            str(from_env.settings),
            json.dumps(from_env.status(), default=str),
        ]
        from_env.shutdown(500)
    finally:
        del os.environ["CMDRDATA_API_KEY"]
    assert any(r.levelno >= logging.ERROR for r in debug_logs.records)

    # The CLI, with the key (good, then malformed) in its environment, DEBUG logging on.
    base_env = {
        **os.environ,
        "CMDRDATA_SPOOL_DIR": str(spool),
        "CMDRDATA_ENDPOINT": cmdrdata_server.url,
        "CMDRDATA_BAGGAGE_SECRET": BAGGAGE_SECRET,
        "OTEL_LOG_LEVEL": "debug",
        "PYTHONWARNINGS": "default",
    }
    runs = []
    for key in (TEST_API_KEY, malformed):
        env = {**base_env, "CMDRDATA_API_KEY": key}
        for command in (["status"], ["status", "--json"], ["check"], ["flush"]):
            proc = subprocess.run(
                [sys.executable, "-m", "cmdrdata_exporter", *command],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            runs.append((key is TEST_API_KEY, command, proc.returncode))
            texts += [proc.stdout, proc.stderr]
    assert (False, ["check"], 0) not in runs, "check must fail on a malformed key"
    assert any("cmd-live-v1-****" in t or "malformed" in t for t in texts)

    out, err = capfd.readouterr()
    texts += [*record_texts(debug_logs), out, err]
    assert_no_secret(texts, "exceptions, logs or CLI output")


def test_exporter_requests_are_untraced_and_sent_once(tmp_path, openai_server, cmdrdata_server):
    """With a ``SimpleSpanProcessor`` (as many apps configure), each event is sent once.

    The instrumentor hands every finished call to the exporter directly and "claims" the span
    so that the processor's ``export()`` skips it. Found by this audit: the claim is made on
    the live ``Span`` while ``export()`` gets the ``ReadableSpan`` copy that ``Span.end()``
    makes, so the claim never matches and the event is spooled twice; once the first copy is
    delivered the second is sent again (the fake cmdrdata counts it in ``duplicates``).
    """
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    provider = TracerProvider()
    exporter = CmdrDataSpanExporter(
        api_key=TEST_API_KEY, endpoint=cmdrdata_server.url, spool_dir=tmp_path / "s", **FAST
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    httpx_instrumentor = HTTPXClientInstrumentor()
    httpx_instrumentor.instrument(tracer_provider=provider)
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        client = openai_server.client()
        with customer_context(CUSTOMER):
            for _ in range(10):
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
                time.sleep(0.05)  # let the sender deliver between calls
        assert cmdrdata_server.wait_for(10, 10)
        exporter.force_flush(2000)
        time.sleep(0.3)
    finally:
        instrumentor.uninstrument()
        httpx_instrumentor.uninstrument()
        exporter.shutdown(2000)
    for request in cmdrdata_server.requests:
        names = {name.lower() for name in request.headers}
        assert "traceparent" not in names and "baggage" not in names
    assert len(cmdrdata_server.events) == 10
    assert cmdrdata_server.duplicates == 0, "events were sent more than once"
