"""SPEC section 7: every event arrives exactly once through each fault of the server."""

from __future__ import annotations

import logging
import time

import pytest
from opentelemetry import baggage, context, propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cmdrdata_exporter import CmdrDataSpanExporter


def _ids(spans, exporter):
    from cmdrdata_exporter import span_to_event

    return {span_to_event(s, exporter.settings)["metadata"]["event_id"] for s in spans}


def _deliver_all(exporter, server, spans, timeout=15.0):
    exporter.export(spans)
    assert server.wait_for(len(spans), timeout), exporter.status()
    expected = _ids(spans, exporter)
    assert set(server.event_ids()) == expected
    assert len(server.event_ids()) == len(expected)  # the server accepted each once
    deadline = time.monotonic() + 5
    while exporter.status()["queued"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert exporter.status()["queued"] == 0


@pytest.mark.parametrize(
    "fault",
    [
        {"fail_next": 7, "fail_status": 503},
        {"fail_next": 5, "fail_status": 500},
        {"fail_next": 3, "fail_status": 408},
        {"drop_next": 6},
        {"rate_limit_next": 3, "retry_after": "0"},
    ],
    ids=["503", "500", "408", "dropped-connections", "429"],
)
def test_transient_faults_lose_nothing_and_duplicate_nothing(
    make_exporter, make_spans, cmdrdata_server, fault
):
    cmdrdata_server.set_mode(**fault)
    exporter = make_exporter()
    _deliver_all(exporter, cmdrdata_server, make_spans(40))
    assert cmdrdata_server.duplicates == 0
    statuses = [r.status for r in cmdrdata_server.requests]
    assert any(s not in (200, 201) for s in statuses) or "drop_next" in fault


def test_server_hanging_past_the_timeout(make_exporter, make_spans, cmdrdata_server):
    cmdrdata_server.set_mode(hang_next=3, hang_seconds=0.8)
    exporter = make_exporter(timeout=0.3)
    _deliver_all(exporter, cmdrdata_server, make_spans(20))
    # A hung request may have been processed after we gave up; the retry carries the same
    # Idempotency-Key, so the server counts it once.
    assert cmdrdata_server.duplicates <= 3


def test_server_down_then_back_on_the_same_port(make_exporter, make_spans, cmdrdata_server):
    exporter = make_exporter()
    exporter.export(make_spans(5))
    assert cmdrdata_server.wait_for(5, 5)
    deadline = time.monotonic() + 5  # the exporter has settled all five before the outage
    while exporter.status()["queued"] and time.monotonic() < deadline:
        time.sleep(0.02)
    cmdrdata_server.stop()
    more = make_spans(30)
    exporter.export(more)
    time.sleep(0.3)
    assert exporter.status()["queued"] == 30
    assert "ConnectError" in (exporter.status()["last_error"] or "")
    cmdrdata_server.start()
    assert cmdrdata_server.wait_for(35, 15)
    assert len(set(cmdrdata_server.event_ids())) == 35 and cmdrdata_server.duplicates == 0


def test_retry_after_is_honoured(make_exporter, make_spans, cmdrdata_server):
    cmdrdata_server.set_mode(rate_limit_next=1, retry_after="1")
    # One request at a time, so no request was already in flight when the 429 arrived.
    exporter = make_exporter(concurrency=1)
    exporter.export(make_spans(10))
    assert cmdrdata_server.wait_for(10, 10)
    first_429 = next(r.at for r in cmdrdata_server.requests if r.status == 429)
    later = [r.at - first_429 for r in cmdrdata_server.requests if r.at > first_429]
    assert later and min(later) >= 0.95  # nobody knocked before Retry-After passed


def test_401_pauses_and_resumes_when_the_key_works(
    make_exporter, make_spans, cmdrdata_server, caplog
):
    caplog.set_level(logging.INFO, logger="cmdrdata_exporter")
    cmdrdata_server.set_mode(unauthorized=True)
    exporter = make_exporter()
    exporter.export(make_spans(10))
    # Wait for the first refusal (a loaded machine may take a while to schedule the sender).
    deadline = time.monotonic() + 10
    while exporter.status()["paused"] is None and time.monotonic() < deadline:
        time.sleep(0.02)
    status = exporter.status()
    assert status["queued"] == 10 and status["rejected"] == 0
    assert status["paused"] == "API key refused"
    refused = [r for r in caplog.records if "refused the API key" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.ERROR
    # paused: a few probes, not a storm
    assert len(cmdrdata_server.requests) < 40
    cmdrdata_server.set_mode(unauthorized=False)
    assert cmdrdata_server.wait_for(10, 10)
    deadline = time.monotonic() + 5
    while exporter.status()["queued"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert exporter.status()["paused"] is None
    assert any("resumed" in r.getMessage() for r in caplog.records)


def test_422_is_kept_as_rejected_with_the_reply(make_exporter, make_spans, cmdrdata_server):
    cmdrdata_server.set_mode(reject=lambda e: e["customer_id"] == "bad")
    exporter = make_exporter()
    exporter.export(make_spans(3, **{"cmdrdata.customer_id": "bad"}) + make_spans(4))
    assert cmdrdata_server.wait_for(4, 5)
    deadline = time.monotonic() + 5
    while exporter.status()["rejected"] < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    status = exporter.status()
    assert (status["queued"], status["delivered"], status["rejected"]) == (0, 4, 3)
    assert {r["status"] for r in status["rejections"]} == {422}
    assert all("rejected by test" in r["reply"] for r in status["rejections"])
    assert status["dropped"]["rejected_422"] == 3
    # never retried
    assert sum(r.status == 422 for r in cmdrdata_server.requests) == 3


def test_shutdown_with_the_server_down_keeps_events_and_keeps_its_deadline(
    make_exporter, make_spans, cmdrdata_server
):
    cmdrdata_server.set_mode(hang_next=1000, hang_seconds=5)
    exporter = make_exporter(timeout=3)
    exporter.export(make_spans(25))
    time.sleep(0.1)
    start = time.monotonic()
    exporter.shutdown(timeout_millis=400)
    assert time.monotonic() - start < 1.0
    exporter.shutdown(timeout_millis=400)  # idempotent
    assert exporter.export(make_spans(1)).name == "FAILURE"
    cmdrdata_server.reset_mode()
    fresh = make_exporter()
    assert fresh.status()["queued"] == 25


def test_export_stays_fast_while_the_server_hangs(make_exporter, make_spans, cmdrdata_server):
    cmdrdata_server.set_mode(hang_next=1000, hang_seconds=2)
    exporter = make_exporter(timeout=2)
    batches = [make_spans(50) for _ in range(4)]
    exporter.export(batches[0])
    time.sleep(0.1)  # the sender is now stuck in requests
    for batch in batches[1:]:
        start = time.perf_counter()
        exporter.export(batch)
        # generous for a loaded CI box; blocking on the server would take 2 s
        assert time.perf_counter() - start < 0.25
    cmdrdata_server.reset_mode()


def test_force_flush_delivers_now(make_exporter, make_spans, cmdrdata_server):
    exporter = make_exporter(_poll_interval=60)
    exporter.export(make_spans(12))
    assert exporter.force_flush(5000) is True
    assert len(cmdrdata_server.event_ids()) == 12


def test_our_requests_are_never_traced_nor_carry_context(
    make_exporter, make_spans, cmdrdata_server
):
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    seen = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(seen))
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    try:
        exporter = make_exporter(_poll_interval=60)
        tracer = provider.get_tracer("app")
        token = context.attach(baggage.set_baggage("cmdrdata.customer_id", "cust-1"))
        try:
            with tracer.start_as_current_span("request"):
                exporter.export(make_spans(3))
                assert exporter.force_flush(5000)
        finally:
            context.detach(token)
    finally:
        HTTPXClientInstrumentor().uninstrument()
    assert [s.name for s in seen.get_finished_spans()] == ["request"]
    for request in cmdrdata_server.requests:
        lowered = {k.lower() for k in request.headers}
        assert "traceparent" not in lowered and "baggage" not in lowered
    assert propagate.get_global_textmap() is not None


def test_wire_format(make_exporter, make_spans, cmdrdata_server):
    exporter = make_exporter()
    (span,) = make_spans(1)
    exporter.export([span])
    assert cmdrdata_server.wait_for(1, 5)
    (request,) = cmdrdata_server.requests
    assert request.path == "/api/events"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"].startswith("Bearer cmd-live-v1-")
    assert request.headers["Idempotency-Key"] == request.body["metadata"]["event_id"]
    assert request.headers["User-Agent"].startswith("opentelemetry-instrumentation-cmdrdata/")


def test_reexport_of_the_same_spans_is_not_sent_twice_while_queued(
    make_exporter, make_spans, cmdrdata_server
):
    cmdrdata_server.stop()
    exporter = make_exporter()
    spans = make_spans(5)
    assert exporter.bill_spans(spans) == 5
    assert exporter.bill_spans(spans) == 0
    assert exporter.status()["queued"] == 5
    assert CmdrDataSpanExporter is type(exporter)
    cmdrdata_server.start()
    assert cmdrdata_server.wait_for(5, 10)
    assert cmdrdata_server.duplicates == 0
