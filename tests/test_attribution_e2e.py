"""Customer attribution end to end: real SDK calls against the local provider servers.

Issue #4, "Done when": nested scopes, 50 concurrent asyncio tasks each billed to its own
customer, threads, per-call ``customer_id=`` precedence, signed baggage accepted and
unsigned or forged baggage rejected, and odd customer ids round-tripped into the span
attribute and into the cmdrdata usage event (SPEC sections 2, 4 and 5).

Spans are matched to the customer that should pay for them through something the same
task also put in its request: a model name of its own (``model-07``), which the fake
servers echo as the response model, so a span, the request the server received and the
usage event can all be tied to the task that made the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from cmdrdata_exporter import CmdrDataSpanExporter
from opentelemetry_instrumentation_cmdrdata import customer as customer_module
from opentelemetry_instrumentation_cmdrdata import (
    customer_context,
    reset_customer_id,
    set_customer_id,
)
from opentelemetry_instrumentation_cmdrdata.semconv import (
    CMDRDATA_CUSTOMER_ID,
    CMDRDATA_METADATA_PREFIX,
    GEN_AI_REQUEST_MODEL,
)
from tests.servers.cmdrdata_fixtures import TEST_API_KEY

MESSAGES = [{"role": "user", "content": "hello"}]
CUSTOMER_LOGGER = "opentelemetry_instrumentation_cmdrdata.customer"
SECRET = "test-baggage-secret-7f3a"


# --- helpers shared with the other attribution test files --------------------------------


@pytest.fixture(autouse=True)
def _no_baggage_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts without CMDRDATA_BAGGAGE_SECRET and with fresh once-only warnings."""
    monkeypatch.delenv(customer_module.SECRET_ENV, raising=False)
    customer_module._reload_settings()
    yield
    monkeypatch.delenv(customer_module.SECRET_ENV, raising=False)
    customer_module._reload_settings()


def use_secret(monkeypatch: pytest.MonkeyPatch, secret: str = SECRET) -> None:
    monkeypatch.setenv(customer_module.SECRET_ENV, secret)
    customer_module._reload_settings()


def customer_of(span: ReadableSpan) -> str | None:
    return span.attributes.get(CMDRDATA_CUSTOMER_ID)


def metadata_of(span: ReadableSpan) -> dict[str, Any]:
    start = len(CMDRDATA_METADATA_PREFIX)
    return {
        key[start:]: value
        for key, value in span.attributes.items()
        if key.startswith(CMDRDATA_METADATA_PREFIX)
    }


def model_of(span: ReadableSpan) -> str:
    return span.attributes[GEN_AI_REQUEST_MODEL]


def header_for(context: otel_context.Context | None = None) -> dict[str, str]:
    """The W3C headers (``traceparent``, ``baggage``) a service would send from ``context``."""
    carrier: dict[str, str] = {}
    inject(carrier, context=context)
    return carrier


@contextlib.contextmanager
def attached(carrier: dict[str, str]) -> Iterator[None]:
    """As in a service receiving ``carrier``: only the context extracted from it is current."""
    token = otel_context.attach(extract(carrier, context=otel_context.Context()))
    try:
        yield
    finally:
        otel_context.detach(token)


class Billing:
    """A CmdrDataSpanExporter on a BatchSpanProcessor of ``provider``, delivering to the fake."""

    def __init__(self, provider: TracerProvider, server: Any, spool_dir: Path) -> None:
        self.server = server
        self.exporter = CmdrDataSpanExporter(
            api_key=TEST_API_KEY, endpoint=server.url, spool_dir=str(spool_dir)
        )
        self.processor = BatchSpanProcessor(self.exporter, schedule_delay_millis=50)
        provider.add_span_processor(self.processor)

    def events(self, count: int) -> list[dict[str, Any]]:
        """Flush, shut the exporter down and return the ``count`` events cmdrdata received."""
        self.processor.force_flush()
        self.exporter.force_flush(5000)
        self.processor.shutdown()
        assert self.server.wait_for(count, timeout=10), self.server.events
        assert len(self.server.events) == count, self.server.events
        return list(self.server.events)

    def close(self) -> None:
        self.processor.shutdown()


@pytest.fixture
def billing(tracer_provider, cmdrdata_server, tmp_path, monkeypatch) -> Iterator[Billing]:
    for name in list(os.environ):
        if name.startswith("CMDRDATA_") and name != customer_module.SECRET_ENV:
            monkeypatch.delenv(name)
    made = Billing(tracer_provider, cmdrdata_server, tmp_path / "spool")
    try:
        yield made
    finally:
        made.close()


# The fake servers answer a keep-alive request about 40 ms late (their headers and body go out
# as two TCP segments, which meets the client's delayed ACK); a fresh connection per request
# answers in a few ms. So the test clients ask for ``Connection: close``.
FRESH_CONNECTION = {"Connection": "close"}


class Clients(NamedTuple):
    openai: Any
    anthropic: Any
    gemini: Any


def make_clients(openai_srv: Any, anthropic_srv: Any, gemini_srv: Any) -> Clients:
    """Sync SDK clients on the fake servers (Anthropic's native tracing off)."""
    from google import genai
    from google.genai import types

    return Clients(
        openai=openai_srv.client(default_headers=FRESH_CONNECTION),
        anthropic=anthropic_srv.client(default_headers=FRESH_CONNECTION, open_telemetry=False),
        gemini=genai.Client(
            api_key="test-key",
            http_options=types.HttpOptions(base_url=gemini_srv.url, headers=FRESH_CONNECTION),
        ),
    )


@pytest.fixture(scope="module")
def shared_clients(
    openai_server_session, anthropic_server_session, gemini_server_session
) -> Iterator[Clients]:
    made = make_clients(openai_server_session, anthropic_server_session, gemini_server_session)
    yield made
    for client in made:
        client.close()


@pytest.fixture
def clients(shared_clients, openai_server, anthropic_server, gemini_server) -> Clients:
    """Sync clients of the three SDKs (made once per module; the servers reset per test)."""
    return shared_clients


def chat(client: Any, model: str = "gpt-4o-mini", **kwargs: Any) -> Any:
    return client.chat.completions.create(model=model, messages=MESSAGES, **kwargs)


async def achat(client: Any, model: str = "gpt-4o-mini", **kwargs: Any) -> Any:
    return await client.chat.completions.create(model=model, messages=MESSAGES, **kwargs)


def customer_warnings(caplog: pytest.LogCaptureFixture, word: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == CUSTOMER_LOGGER and r.levelno == logging.WARNING and word in r.getMessage()
    ]


# --- nested scopes across real calls ------------------------------------------------------


def test_nested_scopes_bill_each_call_to_the_innermost_customer(
    instrument, spans, clients, openai_server
):
    client = clients.openai

    chat(client, "m-before")
    with customer_context("cust-outer", plan="pro"):
        chat(client, "m-outer-1")
        with customer_context("cust-inner", tier="gold"):
            chat(client, "m-inner")
            with customer_context("cust-outer", region="eu"):
                chat(client, "m-outer-again")
            chat(client, "m-inner-2")
        token = set_customer_id("cust-hook", via="set")
        try:
            chat(client, "m-hook")
        finally:
            reset_customer_id(token)
        chat(client, "m-outer-2")
    chat(client, "m-after")

    billed = {model_of(s): (customer_of(s), metadata_of(s)) for s in spans()}
    assert billed == {
        "m-before": (None, {}),
        "m-outer-1": ("cust-outer", {"plan": "pro"}),
        # another customer: the outer metadata is not billed to it
        "m-inner": ("cust-inner", {"tier": "gold"}),
        # the same customer again (nested in another): only this block's own metadata
        "m-outer-again": ("cust-outer", {"region": "eu"}),
        "m-inner-2": ("cust-inner", {"tier": "gold"}),
        "m-hook": ("cust-hook", {"via": "set"}),
        "m-outer-2": ("cust-outer", {"plan": "pro"}),
        "m-after": (None, {}),
    }
    assert len(openai_server.requests) == 8


def test_nested_block_with_the_same_customer_merges_metadata_into_the_call(
    instrument, spans, clients
):
    client = clients.openai
    with (
        customer_context("cust-1", plan="pro", region="us"),
        customer_context("cust-1", region="eu", seats=5),
    ):
        chat(client)
    [span] = spans()
    assert customer_of(span) == "cust-1"
    assert metadata_of(span) == {"plan": "pro", "region": "eu", "seats": "5"}


def test_scope_is_restored_when_the_call_inside_raises(instrument, spans, clients, openai_server):
    import openai

    client = clients.openai
    openai_server.next_error(500)
    with customer_context("cust-outer"):
        with pytest.raises(openai.InternalServerError), customer_context("cust-failing"):
            chat(client, "m-fail")
        chat(client, "m-ok")
    failed, ok = spans()
    assert (model_of(failed), customer_of(failed)) == ("m-fail", "cust-failing")
    assert failed.attributes["error.type"]
    assert (model_of(ok), customer_of(ok)) == ("m-ok", "cust-outer")


def test_stream_is_billed_to_the_customer_current_when_it_was_started(instrument, spans, clients):
    client = clients.openai
    with customer_context("cust-started"):
        stream = chat(client, stream=True)
    with customer_context("cust-consumer"):
        chunks = list(stream)
    assert chunks
    [span] = spans()
    assert customer_of(span) == "cust-started"


async def test_nested_async_with_scopes_across_awaited_calls(instrument, spans, anthropic_server):
    client = anthropic_server.async_client(open_telemetry=False, default_headers=FRESH_CONNECTION)
    try:
        async with customer_context("cust-a", plan="pro"):
            await client.messages.create(model="m-a", max_tokens=8, messages=MESSAGES)
            async with customer_context("cust-b"):
                await asyncio.sleep(0)
                await client.messages.create(model="m-b", max_tokens=8, messages=MESSAGES)
            await asyncio.sleep(0)
            await client.messages.create(model="m-a2", max_tokens=8, messages=MESSAGES)
    finally:
        await client.close()
    billed = {model_of(s): (customer_of(s), metadata_of(s)) for s in spans()}
    assert billed == {
        "m-a": ("cust-a", {"plan": "pro"}),
        "m-b": ("cust-b", {}),
        "m-a2": ("cust-a", {"plan": "pro"}),
    }


# --- anonymous blocks (customer_context(None)) ----------------------------------------------


def _billed_anonymously(events: list[dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    return {e["model"]: (e["customer_id"], e["metadata"].get("plan")) for e in events}


ANONYMOUS_INSIDE_A_CUSTOMER = {
    "m-outer-1": ("cust-outer", "pro"),
    "m-anonymous": ("unattributed", None),
    "m-anonymous-2": ("unattributed", None),
    "m-outer-2": ("cust-outer", "pro"),
}


def test_anonymous_block_inside_a_customer_block_bills_the_default_customer(
    instrument, spans, clients, billing
):
    client = clients.openai
    with customer_context("cust-outer", plan="pro"):
        chat(client, "m-outer-1")
        with customer_context(None):  # an anonymous request handled inside
            chat(client, "m-anonymous")
        token = set_customer_id(None)
        try:
            chat(client, "m-anonymous-2")
        finally:
            reset_customer_id(token)
        chat(client, "m-outer-2")

    assert {model_of(s): customer_of(s) for s in spans()} == {
        "m-outer-1": "cust-outer",
        "m-anonymous": None,
        "m-anonymous-2": None,
        "m-outer-2": "cust-outer",
    }
    assert _billed_anonymously(billing.events(4)) == ANONYMOUS_INSIDE_A_CUSTOMER


async def test_anonymous_block_inside_a_customer_block_bills_the_default_customer_async(
    instrument, spans, openai_server, billing
):
    client = openai_server.async_client(default_headers=FRESH_CONNECTION)
    try:
        async with customer_context("cust-outer", plan="pro"):
            await achat(client, "m-outer-1")
            async with customer_context(None):
                await asyncio.sleep(0)
                await achat(client, "m-anonymous")
            with customer_context(None):
                stream = await achat(client, "m-anonymous-2", stream=True)
                async for _ in stream:
                    pass
            await achat(client, "m-outer-2")
    finally:
        await client.close()

    assert _billed_anonymously(billing.events(4)) == ANONYMOUS_INSIDE_A_CUSTOMER


# --- 50 concurrent asyncio tasks ------------------------------------------------------------


async def test_fifty_concurrent_tasks_each_bill_their_own_customer(
    instrument, spans, openai_server, billing
):
    import httpx2
    import openai

    # The fake server listens with a small accept backlog: 50 simultaneous connects would be
    # reset. A small pool queues the requests inside the SDK instead; the 50 calls (and their
    # spans) still run concurrently.
    pool = openai.DefaultAsyncHttpxClient(limits=httpx2.Limits(max_connections=5))
    client = openai_server.async_client(http_client=pool, default_headers=FRESH_CONNECTION)
    # Streams keep their spans open across many awaits, so the tasks' calls overlap.
    openai_server.configure(chunks=4, chunk_delay=0.002)

    async def one_task(index: int) -> str:
        with customer_context(f"cust-{index:02d}", task=index):
            await asyncio.sleep(0)
            if index % 2:
                response = await achat(client, f"model-{index:02d}")
                return response.model
            stream = await achat(client, f"model-{index:02d}", stream=True)
            models = {chunk.model async for chunk in stream}
            return models.pop()

    try:
        returned = await asyncio.gather(*(one_task(i) for i in range(50)))
    finally:
        await client.close()
    assert returned == [f"model-{i:02d}" for i in range(50)]

    finished = spans()
    assert len(finished) == 50
    for span in finished:
        index = model_of(span).removeprefix("model-")
        assert customer_of(span) == f"cust-{index}", span.attributes
        assert metadata_of(span) == {"task": str(int(index))}
    # The calls really ran concurrently (otherwise the test proves little).
    moments = sorted([(s.start_time, 1) for s in finished] + [(s.end_time, -1) for s in finished])
    open_now = peak = 0
    for _, step in moments:
        open_now += step
        peak = max(peak, open_now)
    assert peak >= 10, f"at most {peak} calls were in flight at once"

    # Each request the provider received came from the task of its model, with no customer.
    assert sorted(r.json["model"] for r in openai_server.requests) == [
        f"model-{i:02d}" for i in range(50)
    ]
    for request in openai_server.requests:
        assert "cust-" not in request.raw_body.decode()
        assert "cmdrdata" not in request.headers.get("baggage", "")

    events = billing.events(50)
    by_model = {event["model"]: event for event in events}
    assert len(by_model) == 50
    for model, event in by_model.items():
        index = model.removeprefix("model-")
        assert event["customer_id"] == f"cust-{index}"
        assert event["metadata"]["task"] == str(int(index))


async def test_concurrent_streams_of_every_provider_keep_their_customers(
    instrument, spans, openai_server, anthropic_server, gemini_server
):
    """Streams interleaved chunk by chunk across tasks; each span is billed to its task."""
    import anthropic
    import httpx2
    import openai
    from google import genai
    from google.genai import types

    def limits() -> httpx2.Limits:
        return httpx2.Limits(max_connections=4)  # see the fifty-task test

    oai = openai_server.async_client(
        http_client=openai.DefaultAsyncHttpxClient(limits=limits()),
        default_headers=FRESH_CONNECTION,
    )
    ant = anthropic_server.async_client(
        http_client=anthropic.DefaultAsyncHttpxClient(limits=limits()),
        default_headers=FRESH_CONNECTION,
        open_telemetry=False,
    )
    gem = genai.Client(
        api_key="test-key",
        http_options=types.HttpOptions(
            base_url=gemini_server.url,
            headers=FRESH_CONNECTION,
            httpx_async_client=httpx2.AsyncClient(limits=limits()),
        ),
    )
    for server in (openai_server, anthropic_server, gemini_server):
        server.configure(chunks=4, chunk_delay=0.002)

    async def chunks(provider: str, model: str) -> Any:
        if provider == "openai":
            async for chunk in await achat(oai, model, stream=True):
                yield chunk
        elif provider == "anthropic":
            async with ant.messages.stream(model=model, max_tokens=8, messages=MESSAGES) as s:
                async for event in s:
                    yield event
        else:
            stream = await gem.aio.models.generate_content_stream(model=model, contents="hi")
            async for chunk in stream:
                yield chunk

    async def one_task(index: int) -> None:
        provider = ("openai", "anthropic", "gemini")[index % 3]
        customer = f"cust-{index:02d}"
        with customer_context(customer):
            await asyncio.sleep(0)
            async for _ in chunks(provider, f"{provider}-{index:02d}"):
                # The caller's own context is untouched while the stream is read.
                assert customer_module.read_attribution()[0] == customer
                await asyncio.sleep(0)

    try:
        await asyncio.gather(*(one_task(i) for i in range(30)))
    finally:
        await oai.close()
        await ant.close()
        await gem.aio.aclose()
        gem.close()

    billed = {model_of(s): customer_of(s) for s in spans()}
    assert len(billed) == 30
    for model, customer in billed.items():
        assert customer == "cust-" + model.rsplit("-", 1)[1], (model, customer)


def _start_stream(provider: str, clients: Clients, model: str) -> Iterator[Any]:
    """A sync stream of ``provider``, as an iterator that closes the stream at its end."""
    if provider == "openai":
        yield from chat(clients.openai, model, stream=True)
    elif provider == "anthropic":
        with clients.anthropic.messages.stream(
            model=model, max_tokens=8, messages=MESSAGES
        ) as stream:
            yield from stream
    else:
        yield from clients.gemini.models.generate_content_stream(model=model, contents="hi")


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_a_stream_left_half_read_does_not_change_the_callers_context(
    provider, instrument, spans, clients
):
    with customer_context("cust-outer", plan="pro"):
        stream = _start_stream(provider, clients, "m-stream")
        next(stream)
        # Between two chunks the caller is back in its own context: same customer, and
        # a call made now is billed to it.
        assert customer_module.read_attribution() == ("cust-outer", {"plan": "pro"})
        chat(clients.openai, "m-between")
        with customer_context("cust-inner"):
            next(stream)
            chat(clients.openai, "m-inner")
        for _ in stream:
            pass
        assert customer_module.read_attribution() == ("cust-outer", {"plan": "pro"})
    assert customer_module.read_attribution() == (None, {})
    billed = {model_of(s): customer_of(s) for s in spans()}
    assert billed == {"m-stream": "cust-outer", "m-between": "cust-outer", "m-inner": "cust-inner"}


# --- threads -----------------------------------------------------------------------------


def test_thread_pool_gets_the_customer_only_when_the_context_is_copied(instrument, spans, clients):
    client = clients.openai
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = []
        for index in range(8):
            with customer_context(f"cust-t{index}", worker="copied"):
                # The documented pattern: copy the context when submitting.
                ctx = contextvars.copy_context()
                futures.append(pool.submit(ctx.run, chat, client, f"copied-{index}"))
        with customer_context("cust-not-copied"):
            futures.append(pool.submit(chat, client, "not-copied"))
        for future in futures:
            future.result()

    billed = {model_of(s): (customer_of(s), metadata_of(s)) for s in spans()}
    assert billed.pop("not-copied") == (None, {})
    assert billed == {f"copied-{i}": (f"cust-t{i}", {"worker": "copied"}) for i in range(8)}


def test_a_copied_context_does_not_stay_in_the_worker_thread(instrument, spans, clients):
    client = clients.openai
    with ThreadPoolExecutor(max_workers=1) as pool:  # one worker runs both jobs
        with customer_context("cust-first"):
            pool.submit(contextvars.copy_context().run, chat, client, "first").result()
        pool.submit(chat, client, "second").result()
    billed = {model_of(s): customer_of(s) for s in spans()}
    assert billed == {"first": "cust-first", "second": None}


async def test_asyncio_to_thread_carries_the_customer(instrument, spans, clients):
    client = clients.openai
    with customer_context("cust-to-thread"):
        await asyncio.to_thread(chat, client, "in-thread")
    [span] = spans()
    assert customer_of(span) == "cust-to-thread"


# --- per-call keyword arguments -----------------------------------------------------------

BAGGAGE = ("cust-bag", {"plan": "pro"})

PRECEDENCE = [
    # (name, baggage, per-call kwargs, expected customer, expected metadata)
    ("call-id-wins", BAGGAGE, {"customer_id": "cust-call"}, "cust-call", {}),
    ("same-id-keeps-metadata", BAGGAGE, {"customer_id": "  cust-bag "}, "cust-bag", BAGGAGE[1]),
    (
        "metadata-merges",
        BAGGAGE,
        {"cmdrdata_metadata": {"feature": "search"}},
        "cust-bag",
        {"plan": "pro", "feature": "search"},
    ),
    (
        "call-metadata-wins-per-key",
        BAGGAGE,
        {"cmdrdata_metadata": {"plan": "enterprise", "n": 3}},
        "cust-bag",
        {"plan": "enterprise", "n": "3"},
    ),
    (
        "call-id-and-metadata",
        BAGGAGE,
        {"customer_id": "cust-call", "cmdrdata_metadata": {"feature": "x"}},
        "cust-call",
        {"feature": "x"},
    ),
    ("none-falls-back-to-baggage", BAGGAGE, {"customer_id": None}, "cust-bag", BAGGAGE[1]),
    ("none-without-baggage", None, {"customer_id": None}, None, {}),
    (
        "call-id-without-baggage",
        None,
        {"customer_id": "cust-call", "cmdrdata_metadata": {"feature": "x"}},
        "cust-call",
        {"feature": "x"},
    ),
]


def provider_call(provider: str, client: Any, **kwargs: Any) -> Any:
    if provider == "openai":
        return chat(client, **kwargs)
    if provider == "anthropic":
        return client.messages.create(
            model="claude-haiku-4-5", max_tokens=8, messages=MESSAGES, **kwargs
        )
    return client.models.generate_content(model="gemini-2.5-flash", contents="hello", **kwargs)


def client_and_server(provider: str, clients: Clients, servers: tuple[Any, ...]) -> Any:
    index = ("openai", "anthropic", "google_genai").index(provider)
    return clients[index], servers[index]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "google_genai"])
@pytest.mark.parametrize(
    ("bag", "kwargs", "expected_id", "expected_metadata"),
    [case[1:] for case in PRECEDENCE],
    ids=[case[0] for case in PRECEDENCE],
)
def test_per_call_arguments_take_precedence_over_baggage(
    provider,
    bag,
    kwargs,
    expected_id,
    expected_metadata,
    instrument,
    spans,
    clients,
    openai_server,
    anthropic_server,
    gemini_server,
):
    servers = (openai_server, anthropic_server, gemini_server)
    client, server = client_and_server(provider, clients, servers)
    if bag is None:
        provider_call(provider, client, **kwargs)
    else:
        with customer_context(bag[0], **bag[1]):
            provider_call(provider, client, **kwargs)

    [span] = spans()
    assert customer_of(span) == expected_id
    assert metadata_of(span) == expected_metadata
    # The SDK never saw our keywords: nothing of them reached the provider.
    [request] = server.requests
    body = request.raw_body.decode()
    for word in ("customer_id", "cmdrdata", "cust-"):
        assert word not in body


@pytest.mark.parametrize(
    "bad",
    ["", "   ", 42, "x" * 257, "cust\nforged", "cust\x00nul"],
    ids=["empty", "blank", "int", "long", "newline", "nul"],
)
def test_bad_per_call_id_bills_unattributed_with_one_warning_and_the_call_works(
    bad, instrument, spans, clients, caplog
):
    client = clients.openai
    caplog.set_level(logging.WARNING, logger=CUSTOMER_LOGGER)
    with customer_context("cust-bag", plan="pro"):
        first = chat(client, customer_id=bad)
        chat(client, customer_id=bad)
    assert first.choices[0].message.content
    for span in spans():
        assert customer_of(span) is None
        assert metadata_of(span) == {}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "customer_id" in warnings[0].getMessage()
    if isinstance(bad, str) and bad.strip():
        assert bad not in caplog.text  # the value is never logged


def _entry_points(client: Any, anthropic_client: Any, gemini_client: Any) -> dict[str, Any]:
    """Every instrumented entry point, called with the given per-call kwargs."""

    def openai_stream(**kw: Any) -> None:
        with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES, **kw) as s:
            for _ in s:
                pass

    def responses_stream(**kw: Any) -> None:
        with client.responses.stream(model="gpt-4o-mini", input="hi", **kw) as s:
            for _ in s:
                pass

    def streaming_response(**kw: Any) -> None:
        with client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES, **kw
        ) as response:
            response.read()

    def anthropic_stream(**kw: Any) -> None:
        with anthropic_client.messages.stream(
            model="claude-haiku-4-5", max_tokens=8, messages=MESSAGES, **kw
        ) as s:
            s.get_final_message()

    def gemini_stream(**kw: Any) -> None:
        for _ in gemini_client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="hi", **kw
        ):
            pass

    return {
        "openai.chat.create": lambda **kw: chat(client, **kw),
        "openai.chat.create-stream": lambda **kw: list(chat(client, stream=True, **kw)),
        "openai.chat.with_raw_response": lambda **kw: (
            client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=MESSAGES, **kw
            ).parse()
        ),
        "openai.chat.with_streaming_response": streaming_response,
        "openai.chat.stream": openai_stream,
        "openai.responses.create": lambda **kw: client.responses.create(
            model="gpt-4o-mini", input="hi", **kw
        ),
        "openai.responses.stream": responses_stream,
        "openai.completions.create": lambda **kw: client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="hi", **kw
        ),
        "openai.embeddings.create": lambda **kw: client.embeddings.create(
            model="text-embedding-3-small", input="hi", **kw
        ),
        "anthropic.messages.create": lambda **kw: anthropic_client.messages.create(
            model="claude-haiku-4-5", max_tokens=8, messages=MESSAGES, **kw
        ),
        "anthropic.messages.stream": anthropic_stream,
        "anthropic.beta.messages.create": lambda **kw: anthropic_client.beta.messages.create(
            model="claude-haiku-4-5", max_tokens=8, messages=MESSAGES, **kw
        ),
        "google_genai.generate_content": lambda **kw: gemini_client.models.generate_content(
            model="gemini-2.5-flash", contents="hi", **kw
        ),
        "google_genai.generate_content_stream": gemini_stream,
        "google_genai.embed_content": lambda **kw: gemini_client.models.embed_content(
            model="text-embedding-004", contents="hi", **kw
        ),
    }


ENTRY_POINTS = list(_entry_points(None, None, None))


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_every_entry_point_accepts_the_per_call_customer(entry_point, instrument, spans, clients):
    """SPEC 2: every instrumented method accepts ``customer_id=`` / ``cmdrdata_metadata=``."""
    run = _entry_points(*clients)[entry_point]
    with customer_context("cust-bag", plan="pro"):
        run(customer_id="cust-call", cmdrdata_metadata={"feature": "x"})
    [span] = spans()
    assert customer_of(span) == "cust-call"
    assert metadata_of(span) == {"feature": "x"}


def test_per_call_customer_reaches_the_usage_event(instrument, spans, clients, billing):
    client = clients.openai
    with customer_context("cust-bag", plan="pro"):
        chat(client, "m-call", customer_id="cust-call", cmdrdata_metadata={"feature": "x"})
        chat(client, "m-merge", cmdrdata_metadata={"feature": "y"})
    chat(client, "m-none")
    events = {e["model"]: e for e in billing.events(3)}
    assert events["m-call"]["customer_id"] == "cust-call"
    assert events["m-call"]["metadata"]["feature"] == "x"
    assert "plan" not in events["m-call"]["metadata"]
    assert events["m-merge"]["customer_id"] == "cust-bag"
    assert events["m-merge"]["metadata"]["plan"] == "pro"
    assert events["m-merge"]["metadata"]["feature"] == "y"
    assert events["m-none"]["customer_id"] == "unattributed"


# --- odd customer ids ---------------------------------------------------------------------

ODD_IDS = {
    "email": "alice+billing@example.com",
    "path": "org:team/user",
    "non-ascii": "Zürich-Büro",
    "emoji": "🦄 customer ✓",
    "baggage-delimiters": "a,b;c=d%20e+f",
    "quotes": 'O\'Brien "&" <co>',
    "256-ascii": "c" * 256,
    "256-astral": "\U0001d4b3" * 256,  # MATHEMATICAL SCRIPT CAPITAL X, 4 UTF-8 bytes
    "whitespace": "  \tpadded-id \n",
}


@pytest.mark.parametrize("raw", ODD_IDS.values(), ids=ODD_IDS.keys())
@pytest.mark.parametrize("secret", [False, True], ids=["plain", "signed"])
def test_odd_ids_survive_the_baggage_round_trip_into_the_span(
    raw, secret, instrument, spans, clients, monkeypatch
):
    if secret:
        use_secret(monkeypatch)
    client = clients.openai
    expected = raw.strip()

    with customer_context(raw, label=raw[:200]):
        chat(client, "same-process")
        headers = header_for()
    # Another service: only the W3C header goes across.
    with attached(headers):
        chat(client, "other-service")

    billed = {model_of(s): (customer_of(s), metadata_of(s)) for s in spans()}
    assert billed == {
        "same-process": (expected, {"label": raw[:200].strip()}),
        "other-service": (expected, {"label": raw[:200].strip()}),
    }
    assert headers["baggage"].isascii()


def test_odd_ids_reach_cmdrdata_intact(instrument, clients, billing):
    client = clients.openai
    for name, raw in ODD_IDS.items():
        with customer_context(raw):
            chat(client, f"m-{name}")
    events = {e["model"]: e["customer_id"] for e in billing.events(len(ODD_IDS))}
    assert events == {f"m-{name}": raw.strip() for name, raw in ODD_IDS.items()}


# --- signed baggage (CMDRDATA_BAGGAGE_SECRET) ----------------------------------------------


def test_signed_customer_is_accepted_in_process_and_across_the_header(
    instrument, spans, clients, monkeypatch, caplog
):
    use_secret(monkeypatch)
    caplog.set_level(logging.DEBUG)
    client = clients.openai
    with customer_context("cust-signed", plan="pro"):
        raw = baggage.get_baggage(CMDRDATA_CUSTOMER_ID)
        chat(client, "in-process")
        headers = header_for()
    assert raw.startswith("cust-signed;cmdrdata.sig=v1.")
    with attached(headers):
        chat(client, "inbound")
    billed = {model_of(s): (customer_of(s), metadata_of(s)) for s in spans()}
    assert billed == {
        "in-process": ("cust-signed", {"plan": "pro"}),
        "inbound": ("cust-signed", {"plan": "pro"}),
    }
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert SECRET not in caplog.text


def test_unsigned_inbound_customer_is_unattributed_with_one_warning(
    instrument, spans, clients, monkeypatch, caplog, billing
):
    use_secret(monkeypatch)
    caplog.set_level(logging.DEBUG)
    client = clients.openai
    inbound = {"baggage": "cmdrdata.customer_id=victim,cmdrdata.metadata.plan=enterprise"}
    with attached(inbound):
        chat(client, "first")
        chat(client, "second")
    for span in spans():
        assert customer_of(span) is None
        assert metadata_of(span) == {}
    assert len(customer_warnings(caplog, "unsigned")) == 1
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    assert SECRET not in caplog.text
    events = billing.events(2)
    assert {e["customer_id"] for e in events} == {"unattributed"}
    assert all("plan" not in e["metadata"] for e in events)


def _forged_headers() -> dict[str, dict[str, str]]:
    """Inbound baggage headers that claim a customer without a valid signature."""
    with customer_context("cust-real", plan="pro"):
        real = header_for()["baggage"]
    assert "cust-real" in real
    return {
        # a real signature, moved to another customer id
        "signature-of-another-id": {"baggage": real.replace("cust-real", "victim")},
        # well-formed but made up
        "made-up-signature": {
            "baggage": "cmdrdata.customer_id=victim%3Bcmdrdata.sig%3Dv1.AAAA.BBBB"
        },
        # the W3C property form a non-Python sender would write
        "property-form": {"baggage": "cmdrdata.customer_id=victim;cmdrdata.sig=v1.AAAA.BBBB"},
        "unknown-version": {"baggage": real.replace("v1.", "v9.")},
        "truncated": {"baggage": real.split(".")[0] + ".x"},
    }


@pytest.mark.parametrize(
    "variant",
    [
        "signature-of-another-id",
        "made-up-signature",
        "property-form",
        "unknown-version",
        "truncated",
    ],
)
def test_forged_inbound_customer_is_rejected(
    variant, instrument, spans, clients, monkeypatch, caplog
):
    use_secret(monkeypatch)
    inbound = _forged_headers()[variant]
    caplog.set_level(logging.WARNING, logger=CUSTOMER_LOGGER)
    client = clients.openai
    with attached(inbound):
        chat(client, "one")
        chat(client, "two")
    for span in spans():
        assert customer_of(span) is None, (variant, inbound)
        assert metadata_of(span) == {}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert SECRET not in caplog.text


def test_customer_signed_with_another_secret_is_rejected(
    instrument, spans, clients, monkeypatch, caplog
):
    use_secret(monkeypatch, "the-other-services-secret")
    with customer_context("cust-elsewhere"):
        inbound = header_for()
    use_secret(monkeypatch, SECRET)
    caplog.set_level(logging.WARNING, logger=CUSTOMER_LOGGER)
    client = clients.openai
    with attached(inbound):
        chat(client)
    [span] = spans()
    assert customer_of(span) is None
    assert len(customer_warnings(caplog, "forged")) == 1
    assert "the-other-services-secret" not in caplog.text


def test_tampered_metadata_is_dropped_but_the_signed_customer_is_billed(
    instrument, spans, clients, monkeypatch, caplog
):
    use_secret(monkeypatch)
    with customer_context("cust-real", plan="pro"):
        real = header_for()["baggage"]
    assert "cmdrdata.metadata.plan=pro" in real
    caplog.set_level(logging.WARNING, logger=CUSTOMER_LOGGER)
    client = clients.openai
    tampered = {
        "changed": real.replace("cmdrdata.metadata.plan=pro", "cmdrdata.metadata.plan=free"),
        "added": real + ",cmdrdata.metadata.discount=100",
    }
    for header in tampered.values():
        with attached({"baggage": header}):
            chat(client)
    for span in spans():
        assert customer_of(span) == "cust-real"
        assert metadata_of(span) == {}
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_without_the_secret_a_signed_entry_still_bills_its_plain_id(
    instrument, spans, clients, monkeypatch
):
    """A service without the secret (mixed deployment) bills the id, not the signature."""
    use_secret(monkeypatch)
    with customer_context("cust-mixed", plan="pro"):
        inbound = header_for()
    monkeypatch.delenv(customer_module.SECRET_ENV)
    customer_module._reload_settings()
    client = clients.openai
    with attached(inbound):
        chat(client)
    [span] = spans()
    assert customer_of(span) == "cust-mixed"
    assert metadata_of(span) == {"plan": "pro"}


def test_without_the_secret_inbound_baggage_is_trusted(instrument, spans, clients):
    """The documented trade-off when no secret is set: whoever calls you names the customer."""
    client = clients.openai
    with attached({"baggage": "cmdrdata.customer_id=from-the-caller"}):
        chat(client)
    [span] = spans()
    assert customer_of(span) == "from-the-caller"


def test_w3c_baggage_propagator_alone_carries_the_signed_customer(
    instrument, spans, clients, monkeypatch
):
    """Only the baggage propagator is needed (no trace context) for the customer to travel."""
    use_secret(monkeypatch)
    propagator = W3CBaggagePropagator()
    carrier: dict[str, str] = {}
    with customer_context("cust-bag-only"):
        propagator.inject(carrier)
    assert set(carrier) == {"baggage"}
    client = clients.openai
    token = otel_context.attach(propagator.extract(carrier, context=otel_context.Context()))
    try:
        chat(client)
    finally:
        otel_context.detach(token)
    [span] = spans()
    assert customer_of(span) == "cust-bag-only"
