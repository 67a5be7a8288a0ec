"""Fidelity of the fake Cohere v2 server against the real ``cohere`` ClientV2 / AsyncClientV2."""

from __future__ import annotations

import cohere
import pytest

from tests.servers import provider_fixtures
from tests.servers.cohere_server import CohereFakeServer, CohereUsage

# cohere's own models use pydantic's deprecated ``__fields__`` when parsing a response.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:cohere.*")

cohere_server_session = provider_fixtures.cohere_server_session
cohere_server = provider_fixtures.cohere_server

MSGS = [{"role": "user", "content": "hi"}]
MODEL = "command-a-03-2025"
USAGE = CohereUsage(input_tokens=30, output_tokens=4, tokens_input=230, tokens_output=5)


def test_chat_usage_billed_units_and_tokens(cohere_server: CohereFakeServer) -> None:
    cohere_server.next(usage=USAGE, content="Salut", response_id="c-1")
    r = cohere_server.client().chat(model=MODEL, messages=MSGS)
    assert (r.id, r.finish_reason, r.message.content[0].text) == ("c-1", "COMPLETE", "Salut")
    assert r.usage.billed_units.input_tokens == 30.0  # floats in the SDK's models
    assert isinstance(r.usage.billed_units.input_tokens, float)
    assert (r.usage.billed_units.output_tokens, r.usage.tokens.input_tokens) == (4, 230)
    assert r.usage.tokens.output_tokens == 5
    req = cohere_server.last_request
    assert (req.path, req.json["stream"], req.json["model"]) == ("/v2/chat", False, MODEL)
    assert req.headers["Authorization"] == "Bearer test-key"
    assert req.headers["X-Fern-SDK-Name"] == "cohere"
    assert "baggage" not in req.headers and "traceparent" not in req.headers


def test_chat_stream_events_end_with_usage(cohere_server: CohereFakeServer) -> None:
    cohere_server.next(usage=USAGE, chunks=3)
    events = list(cohere_server.client().chat_stream(model=MODEL, messages=MSGS))
    assert [e.type for e in events] == [
        "message-start",
        "content-start",
        "content-delta",
        "content-delta",
        "content-delta",
        "content-end",
        "message-end",
    ]
    assert "".join(e.delta.message.content.text for e in events[2:5]) == "t0 t1 t2 "
    end = events[-1]
    assert end.delta.finish_reason == "COMPLETE"
    assert (end.delta.usage.billed_units.input_tokens, end.delta.usage.tokens.output_tokens) == (
        30,
        5,
    )
    assert events[0].id == "chat-fake000000000000000000000001"
    assert cohere_server.last_request.json["stream"] is True


def test_embed_usage_is_in_meta(cohere_server: CohereFakeServer) -> None:
    cohere_server.next(usage=CohereUsage(input_tokens=3))
    r = cohere_server.client().embed(
        model="embed-v4.0",
        input_type="search_document",
        texts=["a", "b"],
        embedding_types=["float", "int8"],
    )
    assert len(r.embeddings.float_) == 2 and len(r.embeddings.int8) == 2
    assert r.meta.billed_units.input_tokens == 3
    assert cohere_server.last_request.path == "/v2/embed"


async def test_async_client(cohere_server: CohereFakeServer) -> None:
    cohere_server.configure(usage=USAGE, chunks=2)
    client = cohere_server.async_client()
    r = await client.chat(model=MODEL, messages=MSGS)
    assert r.usage.billed_units.output_tokens == 4
    events = [e async for e in client.chat_stream(model=MODEL, messages=MSGS)]
    assert events[-1].type == "message-end"
    assert events[-1].delta.usage.billed_units.input_tokens == 30
    r = await client.embed(model="embed-v4.0", input_type="classification", texts=["x"])
    assert r.meta.billed_units.input_tokens == 30
    cohere_server.next_error(429)
    with pytest.raises(cohere.TooManyRequestsError):
        await client.chat(model=MODEL, messages=MSGS)


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (400, cohere.BadRequestError),
        (401, cohere.UnauthorizedError),
        (429, cohere.TooManyRequestsError),
        (500, cohere.InternalServerError),
    ],
)
def test_errors(cohere_server: CohereFakeServer, status: int, exc: type) -> None:
    client = cohere_server.client()
    cohere_server.next_error(status, message="nope")
    with pytest.raises(exc) as info:
        client.chat(model=MODEL, messages=MSGS)
    assert isinstance(info.value, cohere.core.ApiError)
    assert info.value.status_code == status
    assert info.value.body["message"] == "nope"
    cohere_server.next_error(status)
    with pytest.raises(exc):
        list(client.chat_stream(model=MODEL, messages=MSGS))


def test_stream_error_and_cuts(cohere_server: CohereFakeServer) -> None:
    client = cohere_server.client()
    cohere_server.next(error_after=3)
    events = list(client.chat_stream(model=MODEL, messages=MSGS))
    assert events[-1].type == "message-end" and events[-1].delta.finish_reason == "ERROR"
    assert events[-1].delta.usage is None and events[-1].delta.error
    cohere_server.next(truncate_after=4)
    assert [e.type for e in client.chat_stream(model=MODEL, messages=MSGS)][-1] == "content-delta"
    cohere_server.next(drop_after=4)
    with pytest.raises(Exception):  # noqa: B017 - httpx's RemoteProtocolError
        list(client.chat_stream(model=MODEL, messages=MSGS))


def test_client_binds_chat_and_chat_stream_per_instance(cohere_server: CohereFakeServer) -> None:
    """``Client.__init__`` wraps ``chat``/``chat_stream`` into instance attributes (argument
    checks, experimental-kwarg warnings): a class patch made after a client exists is not
    seen through them; ``_raw_client.chat`` (``RawV2Client``) is looked up at call time."""
    client = cohere_server.client()
    assert {"chat", "chat_stream"} <= set(vars(client))
    assert "embed" not in vars(client)
    assert type(client._raw_client).__name__ == "_CombinedRawClient"
