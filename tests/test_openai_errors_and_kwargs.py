"""Errors reach the caller unchanged; our per-call kwargs never reach the SDK."""

from __future__ import annotations

import logging

import openai
import pytest

MESSAGES = [{"role": "user", "content": "Say hi"}]


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (400, openai.BadRequestError),
    ],
)
@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_sdk_exception_reaches_caller_unchanged(
    status, exc_type, flavour, openai_server, make_openai_client, instrument, spans
):
    openai_server.next_error(status)
    client = make_openai_client(flavour)
    with pytest.raises(exc_type) as caught:
        result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        if flavour == "async":
            await result
    assert type(caught.value) is exc_type
    [span] = spans()
    assert span.attributes["error.type"] == exc_type.__qualname__
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["gen_ai.request.model"] == "gpt-4o-mini"


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_per_call_kwargs_removed_and_recorded(
    flavour, openai_server, make_openai_client, instrument, spans
):
    client = make_openai_client(flavour)
    result = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        metadata={"stored": "yes"},
        customer_id="  cust-42  ",
        cmdrdata_metadata={"feature": "chat", "plan": "pro"},
    )
    if flavour == "async":
        await result
    body = openai_server.requests[-1].json
    assert "customer_id" not in body and "cmdrdata_metadata" not in body
    assert body["metadata"] == {"stored": "yes"}  # the SDK's own metadata= untouched
    [span] = spans()
    assert span.attributes["cmdrdata.customer_id"] == "cust-42"
    assert span.attributes["cmdrdata.metadata.feature"] == "chat"
    assert span.attributes["cmdrdata.metadata.plan"] == "pro"


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_track_usage_false_means_no_span(
    flavour, openai_server, make_openai_client, instrument, spans
):
    client = make_openai_client(flavour)
    result = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, track_usage=False, customer_id="c"
    )
    if flavour == "async":
        await result
    assert spans() == []
    assert "track_usage" not in openai_server.requests[-1].json


def test_per_call_kwargs_work_through_raw_response(
    openai_server, make_openai_client, instrument, spans
):
    client = make_openai_client()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, customer_id="cust-raw"
    )
    assert raw.parse().choices
    assert spans()[0].attributes["cmdrdata.customer_id"] == "cust-raw"


def test_bad_per_call_customer_id_never_breaks_the_call(
    openai_server, make_openai_client, instrument, spans, caplog
):
    client = make_openai_client()
    with caplog.at_level(logging.WARNING):
        for bad in (42, "", "x" * 300, None):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, customer_id=bad)
    assert len(spans()) == 4
    assert all("cmdrdata.customer_id" not in span.attributes for span in spans())
    assert "x" * 300 not in caplog.text


def test_per_call_kwargs_stripped_when_not_instrumented(
    openai_server, make_openai_client, instrument
):
    """Even inside suppress_instrumentation, customer_id= must not reach the SDK."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    client = make_openai_client()
    with suppress_instrumentation():
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, customer_id="c")
    assert "customer_id" not in openai_server.requests[-1].json
