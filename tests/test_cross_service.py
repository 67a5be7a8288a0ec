"""Two real HTTP services: the customer set in service A is billed in service B.

Issue #4 item 3 (and 5 for the signed variant). Both services run in this process, each a
``ThreadingHTTPServer`` on 127.0.0.1 whose requests are handled on threads of their own,
which start with an empty OpenTelemetry context: the only way the customer can get from A
to B is the W3C ``baggage`` header.

- **A** (``/checkout``) is the edge: it takes the customer from the authenticated user
  (a header its auth layer would set), runs ``customer_context(user, plan=...)`` and calls B,
  propagating the context either by hand (``opentelemetry.propagate.inject`` with the
  default ``tracecontext,baggage`` propagators, sent with urllib) or through
  ``opentelemetry-instrumentation-httpx`` on an ``httpx2`` client.
- **B** (``/summarise``) extracts the context from its request headers
  (``opentelemetry.propagate.extract``), attaches it and makes an instrumented OpenAI call
  against the fake OpenAI server.

A ``CmdrDataSpanExporter`` on a ``BatchSpanProcessor`` delivers B's span to the fake
cmdrdata, so the tests check the span, the usage event and the provider's request.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from opentelemetry_instrumentation_cmdrdata import customer_context
from tests import test_attribution_e2e as e2e
from tests.compat import httpx2_instrumentor
from tests.servers.base import QuietHandler
from tests.test_attribution_e2e import (
    CUSTOMER_LOGGER,
    MESSAGES,
    SECRET,
    customer_of,
    metadata_of,
    model_of,
    use_secret,
)

# Shared fixtures: sync SDK clients, the usage-event pipeline, no baggage secret by default.
shared_clients = e2e.shared_clients
clients = e2e.clients
billing = e2e.billing
_no_baggage_secret = e2e._no_baggage_secret

Handler = Callable[[dict[str, str], dict[str, Any]], dict[str, Any]]


class Service:
    """A real HTTP service: ``POST`` any path -> ``handle(headers, json_body)`` -> JSON."""

    def __init__(self, name: str, handle: Handler) -> None:
        self.name = name
        self.received: list[dict[str, str]] = []  # inbound headers, lower-case names
        service = self

        class _Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                headers = {key.lower(): value for key, value in self.headers.items()}
                service.received.append(headers)
                try:
                    status, payload = 200, handle(headers, body)
                except Exception as exc:  # reported to the caller, so a test sees it
                    status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    """A plain HTTP client (urllib: not instrumented, sends only the headers given)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


class Services:
    """Service A (edge, sets the customer) calling service B (makes the LLM call)."""

    def __init__(self, openai_client: Any, tracer_provider: Any, transport: str) -> None:
        self.transport = transport
        self.a_spans: list[Any] = []
        tracer = tracer_provider.get_tracer("service-a")
        self._httpx_client: Any = None
        if transport == "httpx":
            import httpx2

            self._httpx_client = httpx2.Client(timeout=10)

        def summarise(headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
            # Service B: continue the caller's context, then call the model.
            token = otel_context.attach(propagate.extract(headers))
            try:
                response = openai_client.chat.completions.create(
                    model=body.get("model", "gpt-4o-mini"), messages=MESSAGES
                )
            finally:
                otel_context.detach(token)
            return {"response_id": response.id}

        def checkout(headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
            # Service A: an instrumented web service would also continue inbound context.
            token = otel_context.attach(propagate.extract(headers))
            try:
                with tracer.start_as_current_span(
                    "POST /checkout", kind=trace.SpanKind.SERVER
                ) as span:
                    self.a_spans.append(span)
                    # Set by the auth layer; http.server reads header bytes as Latin-1.
                    user = headers["x-authenticated-user"].encode("latin-1").decode()
                    with customer_context(user, plan=body.get("plan", "free")):
                        return self._call_b({"model": body.get("model", "gpt-4o-mini")})
            finally:
                otel_context.detach(token)

        self.b = Service("B", summarise)
        self.a = Service("A", checkout)

    def _call_b(self, body: dict[str, Any]) -> dict[str, Any]:
        url = self.b.url + "/summarise"
        if self.transport == "httpx":
            # opentelemetry-instrumentation-httpx writes traceparent and baggage.
            response = self._httpx_client.post(url, json=body)
            response.raise_for_status()
            return response.json()
        headers: dict[str, str] = {}
        propagate.inject(headers)
        return post(url, body, headers)

    def checkout(self, user: str, headers: dict[str, str] | None = None, **body: Any) -> Any:
        raw_user = user.encode().decode("latin-1")  # the UTF-8 bytes, as urllib sends them
        return post(
            self.a.url + "/checkout", body, {"X-Authenticated-User": raw_user, **(headers or {})}
        )

    def close(self) -> None:
        self.a.close()
        self.b.close()
        if self._httpx_client is not None:
            self._httpx_client.close()


@pytest.fixture(params=["inject", "httpx"])
def transport(request, tracer_provider) -> Iterator[str]:
    """How A propagates to B: ``propagate.inject`` by hand, or the httpx instrumentation."""
    if request.param == "inject":
        yield "inject"
        return
    HTTPX2ClientInstrumentor = httpx2_instrumentor()

    HTTPX2ClientInstrumentor().instrument(tracer_provider=tracer_provider)
    try:
        yield "httpx"
    finally:
        HTTPX2ClientInstrumentor().uninstrument()


@pytest.fixture
def services(clients, tracer_provider, transport, instrument) -> Iterator[Services]:
    made = Services(clients.openai, tracer_provider, transport)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(autouse=True)
def _default_propagators() -> None:
    """The tests rely on the default global propagators (OTEL_PROPAGATORS unset)."""
    fields = propagate.get_global_textmap().fields
    assert {"traceparent", "baggage"} <= set(fields), fields


def assert_nothing_of_ours_sent_to(openai_server: Any, *secrets: str) -> None:
    for request in openai_server.requests:
        for name, value in request.headers.raw_items():
            for secret in ("cmdrdata", *secrets):
                assert secret not in value, f"{name}: {value}"
        for secret in ("cmdrdata", *secrets):
            assert secret not in request.raw_body.decode()


# --- the customer travels from A to B ------------------------------------------------------


def test_customer_set_in_service_a_is_billed_in_service_b(
    services, spans, billing, openai_server, cmdrdata_server
):
    reply = services.checkout("cust-A", plan="pro")
    assert reply["response_id"]

    # B received the customer in the W3C baggage header (and the trace context).
    [inbound] = services.b.received
    assert "cmdrdata.customer_id=cust-A" in inbound["baggage"]
    assert "cmdrdata.metadata.plan=pro" in inbound["baggage"]
    assert "traceparent" in inbound

    # B's LLM call is billed to A's customer, in A's trace.
    [span] = spans()
    assert customer_of(span) == "cust-A"
    assert metadata_of(span) == {"plan": "pro"}
    [a_span] = services.a_spans
    assert span.context.trace_id == a_span.get_span_context().trace_id

    # ... and the customer id did not go on to OpenAI.
    [request] = openai_server.requests
    assert request.json["model"] == "gpt-4o-mini"
    assert_nothing_of_ours_sent_to(openai_server, "cust-A")
    if services.transport == "httpx":
        assert "traceparent" in request.headers  # B's HTTP client is instrumented too

    [event] = billing.events(1)
    assert event["customer_id"] == "cust-A"
    assert event["metadata"]["plan"] == "pro"
    assert event["metadata"]["trace_id"] == f"{span.context.trace_id:032x}"
    # The exporter's own request carries no trace context or baggage (SPEC 7).
    for received in cmdrdata_server.requests:
        lower = {k.lower() for k in received.headers}
        assert "baggage" not in lower
        assert "traceparent" not in lower


def test_concurrent_requests_for_different_users_are_billed_apart(services, spans):
    users = [f"user-{i}@example.com" for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda u: services.checkout(u, plan="team", model=f"m-{u}"), users))
    assert all(r["response_id"] for r in replies)
    billed = {model_of(s): (customer_of(s), metadata_of(s)) for s in spans()}
    assert billed == {f"m-{u}": (u, {"plan": "team"}) for u in users}


def test_a_callers_baggage_cannot_choose_the_customer_at_the_edge(services, spans):
    """A client's own cmdrdata baggage sent to A is replaced by A's customer_context."""
    reply = services.checkout(
        "cust-A",
        plan="pro",
        headers={
            "baggage": "cmdrdata.customer_id=victim,cmdrdata.metadata.plan=enterprise,"
            "tenant-tier=gold"
        },
    )
    assert reply["response_id"]
    [inbound] = services.b.received
    assert "victim" not in inbound["baggage"]
    assert "enterprise" not in inbound["baggage"]
    # The app's other entries still travel from service to service.
    assert "tenant-tier=gold" in inbound["baggage"]
    [span] = spans()
    assert customer_of(span) == "cust-A"
    assert metadata_of(span) == {"plan": "pro"}


def test_odd_customer_ids_cross_the_service_boundary_intact(services, spans, billing):
    odd = ["alice+billing@example.com", "org:team/user", "Zürich-Büro 🦄"]
    for index, user in enumerate(odd):
        services.checkout(user, plan="pro", model=f"m-{index}")
    billed = {model_of(s): customer_of(s) for s in spans()}
    expected = {f"m-{i}": user for i, user in enumerate(odd)}
    assert billed == expected
    events = {e["model"]: e["customer_id"] for e in billing.events(len(odd))}
    assert events == expected


# --- signed baggage across services ------------------------------------------------------


def test_signed_customer_from_a_is_accepted_in_b(
    services, spans, billing, monkeypatch, caplog, openai_server
):
    use_secret(monkeypatch)  # both services read the same CMDRDATA_BAGGAGE_SECRET
    caplog.set_level(logging.DEBUG)

    services.checkout("cust-A", plan="pro")

    [inbound] = services.b.received
    assert "cmdrdata.sig" in inbound["baggage"]  # percent-encoded inside the value
    [span] = spans()
    assert customer_of(span) == "cust-A"
    assert metadata_of(span) == {"plan": "pro"}
    [event] = billing.events(1)
    assert event["customer_id"] == "cust-A"
    assert event["metadata"]["plan"] == "pro"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert SECRET not in caplog.text
    assert_nothing_of_ours_sent_to(openai_server, "cust-A", "sig")


@pytest.mark.parametrize("secret", [True, False], ids=["secret", "no-secret"])
def test_a_client_calling_b_directly_with_handmade_baggage(
    secret, services, spans, billing, monkeypatch, caplog
):
    """With the secret the hand-made entry bills nobody; without it, it is trusted."""
    if secret:
        use_secret(monkeypatch)
    caplog.set_level(logging.WARNING, logger=CUSTOMER_LOGGER)
    headers = {"baggage": "cmdrdata.customer_id=victim,cmdrdata.metadata.plan=enterprise"}

    post(services.b.url + "/summarise", {"model": "m-direct-1"}, headers)
    post(services.b.url + "/summarise", {"model": "m-direct-2"}, headers)

    finished = spans()
    assert len(finished) == 2
    events = billing.events(2)
    if secret:
        assert [customer_of(s) for s in finished] == [None, None]
        assert all(metadata_of(s) == {} for s in finished)
        assert {e["customer_id"] for e in events} == {"unattributed"}
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "unsigned" in warnings[0].getMessage()
    else:
        assert [customer_of(s) for s in finished] == ["victim", "victim"]
        assert {e["customer_id"] for e in events} == {"victim"}


def test_a_replayed_signature_for_another_customer_is_rejected_in_b(
    services, spans, monkeypatch, caplog
):
    use_secret(monkeypatch)
    caplog.set_level(logging.WARNING, logger=CUSTOMER_LOGGER)
    services.checkout("cust-A", plan="pro", model="m-real")
    [genuine] = services.b.received
    forged = genuine["baggage"].replace("cust-A", "victim")

    post(services.b.url + "/summarise", {"model": "m-forged"}, {"baggage": forged})

    billed = {model_of(s): customer_of(s) for s in spans()}
    assert billed == {"m-real": "cust-A", "m-forged": None}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "forged" in warnings[0].getMessage()
