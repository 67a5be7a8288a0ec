"""No ``cmdrdata.*`` baggage ever reaches an AI provider (SPEC section 4, issue #4 item 4).

Two things write a ``baggage`` header into a provider request from the current context:
``opentelemetry-instrumentation-httpx`` (``HTTPX2ClientInstrumentor``: the SDKs talk through
``httpx2``) and the Anthropic SDK 2.x itself, which injects the registered propagators'
headers into every request of a traced call. The local provider servers record every header
they receive. Each test makes every call kind (instrumented, ``track_usage=False``, inside
``suppress_instrumentation()``), plain and streamed, inside ``customer_context`` and beside
an app baggage entry of its own (``tenant-tier=gold``), then checks each request: nothing
of ours in any header or body, while the app's entry still goes out wherever a propagator
runs (baggage other than ours is left alone).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.utils import suppress_instrumentation

from opentelemetry_instrumentation_cmdrdata import customer_context
from tests import test_attribution_e2e as e2e
from tests.compat import httpx2_instrumentor
from tests.test_attribution_e2e import (
    FRESH_CONNECTION,
    MESSAGES,
    attached,
    customer_of,
    header_for,
    use_secret,
)

# Shared fixtures: sync SDK clients made once per module, and no baggage secret by default.
shared_clients = e2e.shared_clients
clients = e2e.clients
_no_baggage_secret = e2e._no_baggage_secret

CUSTOMER = "cust-secret-9"
APP_ENTRY = "tenant-tier=gold"
PROVIDERS = ["openai", "anthropic-native", "anthropic-no-native", "google_genai"]
KINDS = ["instrumented", "untracked", "suppressed"]
SHAPES = ["create", "stream"]


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(params=["httpx-on", "httpx-off"])
def httpx_on(request, tracer_provider) -> Iterator[bool]:
    """opentelemetry-instrumentation-httpx on (for httpx2, which the SDKs use, and httpx)."""
    if request.param == "httpx-off":
        yield False
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentors = [httpx2_instrumentor()(), HTTPXClientInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        yield True
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()


@pytest.fixture
def app_baggage() -> Iterator[None]:
    """The application's own baggage entry, current for the test."""
    token = otel_context.attach(baggage.set_baggage("tenant-tier", "gold"))
    try:
        yield
    finally:
        otel_context.detach(token)


@pytest.fixture
async def client_for(
    clients, openai_server, anthropic_server, gemini_server, tracer_provider
) -> Any:
    """``client_for(provider, flavour)`` -> (SDK client, its fake server)."""
    from google import genai

    made: list[Any] = []

    def make(provider: str, flavour: str) -> tuple[Any, Any]:
        if provider.startswith("anthropic"):
            native = (
                {"tracer_provider": tracer_provider} if provider == "anthropic-native" else False
            )
            factory = (
                anthropic_server.client if flavour == "sync" else anthropic_server.async_client
            )
            client = factory(open_telemetry=native, default_headers=FRESH_CONNECTION)
            made.append(client)
            return client, anthropic_server
        if flavour == "sync":
            client = clients.openai if provider == "openai" else clients.gemini
        elif provider == "openai":
            client = openai_server.async_client(default_headers=FRESH_CONNECTION)
            made.append(client)
        else:
            # The fake's options keep async calls on httpx even with aiohttp installed.
            options = gemini_server.http_options()
            options.headers = FRESH_CONNECTION
            client = genai.Client(api_key="test-key", http_options=options)
            made.append(client)
        return client, openai_server if provider == "openai" else gemini_server

    yield make
    for client in made:
        if hasattr(client, "aio"):
            await client.aio.aclose()
            client.close()
        else:
            result = client.close()
            if result is not None:
                await result


# --- calls --------------------------------------------------------------------------------


def sync_call(provider: str, client: Any, shape: str, model: str, **kw: Any) -> None:
    if provider == "openai":
        if shape == "create":
            client.chat.completions.create(model=model, messages=MESSAGES, **kw)
        else:
            for _ in client.chat.completions.create(
                model=model, messages=MESSAGES, stream=True, **kw
            ):
                pass
    elif provider.startswith("anthropic"):
        if shape == "create":
            client.messages.create(model=model, max_tokens=8, messages=MESSAGES, **kw)
        else:
            with client.messages.stream(model=model, max_tokens=8, messages=MESSAGES, **kw) as s:
                s.get_final_message()
    elif shape == "create":
        client.models.generate_content(model=model, contents="hello", **kw)
    else:
        for _ in client.models.generate_content_stream(model=model, contents="hello", **kw):
            pass


async def async_call(provider: str, client: Any, shape: str, model: str, **kw: Any) -> None:
    if provider == "openai":
        if shape == "create":
            await client.chat.completions.create(model=model, messages=MESSAGES, **kw)
        else:
            stream = await client.chat.completions.create(
                model=model, messages=MESSAGES, stream=True, **kw
            )
            async for _ in stream:
                pass
    elif provider.startswith("anthropic"):
        if shape == "create":
            await client.messages.create(model=model, max_tokens=8, messages=MESSAGES, **kw)
        else:
            async with client.messages.stream(
                model=model, max_tokens=8, messages=MESSAGES, **kw
            ) as s:
                await s.get_final_message()
    elif shape == "create":
        await client.aio.models.generate_content(model=model, contents="hello", **kw)
    else:
        stream = await client.aio.models.generate_content_stream(
            model=model, contents="hello", **kw
        )
        async for _ in stream:
            pass


async def run_call(provider: str, client: Any, flavour: str, kind: str, shape: str) -> None:
    """One call, labelled ``{kind}.{shape}`` through its model name."""
    model = f"{kind}.{shape}"
    kwargs = {"track_usage": False} if kind == "untracked" else {}
    scope = suppress_instrumentation() if kind == "suppressed" else contextlib.nullcontext()
    with scope:
        if flavour == "sync":
            sync_call(provider, client, shape, model, **kwargs)
        else:
            await async_call(provider, client, shape, model, **kwargs)


def label_of(request: Any) -> str:
    if isinstance(request.json, dict) and isinstance(request.json.get("model"), str):
        return request.json["model"]
    return request.path.rsplit("/", 1)[-1].split(":")[0]  # Gemini: the model is in the path


def assert_nothing_of_ours(request: Any, *secrets: str) -> None:
    label = label_of(request)
    for name, value in request.headers.raw_items():
        for secret in ("cmdrdata", *secrets):
            assert secret not in value, f"{label}: header {name}: {value}"
            assert secret not in name.lower(), f"{label}: header {name}"
    body = request.raw_body.decode("utf-8", "replace")
    for secret in ("cmdrdata", *secrets):
        assert secret not in body, f"{label}: body"


def app_entry_expected(provider: str, httpx_on: bool, kind: str) -> bool:
    """Where a propagator runs for this call, so the app's own entry must go out."""
    if httpx_on and kind != "suppressed":
        return True  # the httpx instrumentation injects (it honours suppression)
    # The Anthropic SDK propagates from its own call span, inside ours or not, and even
    # inside suppress_instrumentation() (the propagators do not look at suppression).
    return provider == "anthropic-native"


# --- the matrix ---------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_no_customer_baggage_reaches_the_provider(
    provider, flavour, httpx_on, app_baggage, instrument, spans, client_for
):
    client, server = client_for(provider, flavour)

    with customer_context(CUSTOMER, plan="pro"):
        for kind in KINDS:
            for shape in SHAPES:
                await run_call(provider, client, flavour, kind, shape)

    requests = {label_of(r): r for r in server.requests}
    assert sorted(requests) == sorted(f"{k}.{s}" for k in KINDS for s in SHAPES)
    for label, request in requests.items():
        assert_nothing_of_ours(request, CUSTOMER, "plan=pro")
        kind = label.split(".")[0]
        if app_entry_expected(provider, httpx_on, kind):
            assert request.headers.get("baggage") == APP_ENTRY, label
        if httpx_on and kind != "suppressed":
            assert "traceparent" in request.headers, label

    # The customer was there all along: the instrumented calls are billed to it.
    billed = {s.attributes["gen_ai.request.model"]: customer_of(s) for s in spans()}
    assert billed == {"instrumented.create": CUSTOMER, "instrumented.stream": CUSTOMER}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_inbound_cmdrdata_entries_are_not_forwarded_to_the_provider(
    provider, app_baggage, instrument, spans, client_for, tracer_provider, monkeypatch
):
    """Entries that came in with a request (unsigned, so ignored for billing) are stripped too."""
    HTTPX2ClientInstrumentor = httpx2_instrumentor()

    use_secret(monkeypatch)
    client, server = client_for(provider, "sync")
    inbound = {
        "baggage": "cmdrdata.customer_id=victim,cmdrdata.metadata.plan=enterprise,"
        "cmdrdata.other=1,tenant-tier=gold"
    }
    HTTPX2ClientInstrumentor().instrument(tracer_provider=tracer_provider)
    try:
        with attached(inbound):
            for shape in SHAPES:
                await run_call(provider, client, "sync", "instrumented", shape)
                await run_call(provider, client, "sync", "untracked", shape)
    finally:
        HTTPX2ClientInstrumentor().uninstrument()

    assert len(server.requests) == 4
    for request in server.requests:
        assert_nothing_of_ours(request, "victim", "enterprise")
        assert request.headers["baggage"] == APP_ENTRY
    assert [customer_of(s) for s in spans()] == [None, None]


def test_every_retry_of_a_call_is_clean(
    app_baggage, instrument, spans, openai_server, tracer_provider
):
    HTTPX2ClientInstrumentor = httpx2_instrumentor()

    client = openai_server.client(max_retries=2, default_headers=FRESH_CONNECTION)
    openai_server.next_error(500, times=2)
    HTTPX2ClientInstrumentor().instrument(tracer_provider=tracer_provider)
    try:
        with customer_context(CUSTOMER):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        HTTPX2ClientInstrumentor().uninstrument()
        client.close()
    assert len(openai_server.requests) == 3
    for request in openai_server.requests:
        assert_nothing_of_ours(request, CUSTOMER)
        assert request.headers["baggage"] == APP_ENTRY
    [span] = spans()
    assert customer_of(span) == CUSTOMER


def test_a_signed_customer_is_not_forwarded_either(
    app_baggage, instrument, spans, clients, openai_server, tracer_provider, monkeypatch
):
    HTTPX2ClientInstrumentor = httpx2_instrumentor()

    use_secret(monkeypatch)
    HTTPX2ClientInstrumentor().instrument(tracer_provider=tracer_provider)
    try:
        with customer_context(CUSTOMER, plan="pro"):
            assert "cmdrdata.sig" in header_for()["baggage"]  # what would leak
            clients.openai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        HTTPX2ClientInstrumentor().uninstrument()
    [request] = openai_server.requests
    assert_nothing_of_ours(request, CUSTOMER, "sig")
    assert request.headers["baggage"] == APP_ENTRY


# --- the check can fail: without the instrumentor the customer does leak --------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic-native"])
async def test_control_without_our_instrumentor_the_customer_would_leak(
    provider, app_baggage, client_for, tracer_provider
):
    """Proves the servers would see a leak: with the instrumentor off, the entry goes out."""
    HTTPX2ClientInstrumentor = httpx2_instrumentor()

    client, server = client_for(provider, "sync")
    instrument_httpx = provider == "openai"  # Anthropic propagates by itself
    if instrument_httpx:
        HTTPX2ClientInstrumentor().instrument(tracer_provider=tracer_provider)
    try:
        with customer_context(CUSTOMER):
            await run_call(provider, client, "sync", "plain", "create")
    finally:
        if instrument_httpx:
            HTTPX2ClientInstrumentor().uninstrument()
    [request] = server.requests
    assert f"cmdrdata.customer_id={CUSTOMER}" in request.headers["baggage"]
    assert APP_ENTRY in request.headers["baggage"]


# --- SDK methods that are not billed still talk to the provider ------------------------------

OTHER_METHODS = [
    "anthropic.messages.count_tokens",
    "openai.models.list",
    "google_genai.count_tokens",
]


@pytest.mark.parametrize("method", OTHER_METHODS)
async def test_sdk_methods_that_are_not_billed_do_not_leak_the_customer_either(
    method, httpx_on, app_baggage, instrument, spans, client_for
):
    """SPEC 4: *no* request to the provider carries our entries, billed or not.

    ``count_tokens``, ``models.list``, files, batches... are not wrapped (nothing to bill),
    but their requests go out from the caller's context all the same: through the
    httpx instrumentation, and for Anthropic through the SDK's own propagation.
    """
    import openai

    provider = method.split(".")[0]
    client, server = client_for("anthropic-native" if provider == "anthropic" else provider, "sync")
    with customer_context(CUSTOMER, plan="pro"):
        if provider == "anthropic":
            client.messages.count_tokens(model="claude-haiku-4-5", messages=MESSAGES)
        elif provider == "openai":
            with contextlib.suppress(openai.NotFoundError):  # the fake has no such route
                client.models.list()
        else:
            client.models.count_tokens(model="gemini-2.5-flash", contents="hello")

    [request] = server.requests
    assert_nothing_of_ours(request, CUSTOMER, "plan=pro")
    if httpx_on or provider == "anthropic":
        assert request.headers.get("baggage") == APP_ENTRY
    assert spans() == []
