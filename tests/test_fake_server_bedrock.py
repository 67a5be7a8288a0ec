"""Fidelity of the fake Bedrock Runtime server against real boto3 and aiobotocore clients."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError

from tests.servers import provider_fixtures
from tests.servers.bedrock_server import BedrockFakeServer, BedrockUsage, encode_event, family_of

bedrock_server_session = provider_fixtures.bedrock_server_session
bedrock_server = provider_fixtures.bedrock_server

MSGS = [{"role": "user", "content": [{"text": "hi"}]}]
CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
PROFILE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
    "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
)
CACHED = BedrockUsage(
    input_tokens=30, output_tokens=12, cache_read_input_tokens=500, cache_write_input_tokens=70
)


# -- the event-stream encoder, decoded by botocore's own decoder ---------------------------


def _decode(data: bytes, split: int | None = None) -> list[Any]:
    buf = EventStreamBuffer()
    for part in (data,) if split is None else (data[:split], data[split:]):
        buf.add_data(part)
    return list(buf)


@pytest.mark.parametrize(
    ("headers", "payload"),
    [
        ({":event-type": "chunk", ":message-type": "event"}, b'{"bytes":"e30="}'),
        ({":message-type": "event", "é-name": "välue"}, "ünïcode ✓".encode()),
        ({":message-type": "event", "blob": b"\x00\x01\xff"}, b""),
        ({}, b"x" * 70_000),
    ],
)
def test_eventstream_encoder_round_trips_through_botocore(
    headers: dict[str, Any], payload: bytes
) -> None:
    frame = encode_event(headers, payload)
    two = frame + encode_event({":event-type": "second"}, b"{}")
    for split in (None, 3, 13, len(frame) - 1, len(frame) + 5):
        messages = _decode(two, split)
        assert [m.payload for m in messages] == [payload, b"{}"]
        assert messages[0].headers == headers
        assert messages[1].headers == {":event-type": "second"}


def test_eventstream_crc_is_checked() -> None:
    frame = bytearray(encode_event({":event-type": "x"}, b"payload"))
    frame[-6] ^= 0x01  # one bit of the payload
    with pytest.raises(ChecksumMismatch):
        _decode(bytes(frame))


# -- Converse ----------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", [CLAUDE, PROFILE, ARN])
def test_converse_usage_and_model_id_kept_whole(
    bedrock_server: BedrockFakeServer, model_id: str
) -> None:
    bedrock_server.next(usage=CACHED, content="Hello!", stop_reason="max_tokens")
    r = bedrock_server.client().converse(modelId=model_id, messages=MSGS)
    assert r["output"]["message"] == {"role": "assistant", "content": [{"text": "Hello!"}]}
    assert r["stopReason"] == "max_tokens"
    assert r["usage"] == {
        "inputTokens": 30,
        "outputTokens": 12,
        "totalTokens": 612,
        "cacheReadInputTokens": 500,
        "cacheWriteInputTokens": 70,
    }
    assert r["metrics"] == {"latencyMs": 42}
    req = bedrock_server.last_request
    assert bedrock_server.model_id(req) == model_id
    assert req.path.endswith("/converse")
    assert req.json["messages"] == MSGS
    assert "baggage" not in req.headers
    assert req.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=test/")


def test_bedrock_api_key_auth(bedrock_server: BedrockFakeServer, monkeypatch) -> None:
    """With ``AWS_BEARER_TOKEN_BEDROCK`` set, botocore sends a bearer token, not SigV4."""
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-test")
    bedrock_server.client().converse(modelId=CLAUDE, messages=MSGS)
    assert bedrock_server.last_request.headers["Authorization"] == "Bearer bedrock-api-key-test"


def test_converse_default_usage_has_no_cache_fields(bedrock_server: BedrockFakeServer) -> None:
    r = bedrock_server.client().converse(modelId="amazon.nova-lite-v1:0", messages=MSGS)
    assert r["usage"] == {"inputTokens": 21, "outputTokens": 11, "totalTokens": 32}


def test_converse_stream_events(bedrock_server: BedrockFakeServer) -> None:
    bedrock_server.next(usage=CACHED, chunks=3)
    r = bedrock_server.client().converse_stream(modelId=ARN, messages=MSGS)
    events = list(r["stream"])
    assert [next(iter(e)) for e in events] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events[1:4])
    assert text == "t0 t1 t2 "
    assert events[-2] == {"messageStop": {"stopReason": "end_turn"}}
    assert events[-1]["metadata"]["usage"] == CACHED.converse_json()
    assert events[-1]["metadata"]["metrics"] == {"latencyMs": 42}
    assert bedrock_server.model_id(bedrock_server.last_request) == ARN


def test_converse_stream_exception_event(bedrock_server: BedrockFakeServer) -> None:
    bedrock_server.next(error_after=2, error_type="throttlingException", error_message="slow")
    r = bedrock_server.client().converse_stream(modelId=CLAUDE, messages=MSGS)
    seen = []
    with pytest.raises(EventStreamError) as info:
        for event in r["stream"]:
            seen.append(event)
    assert len(seen) == 2
    assert info.value.response["Error"] == {"Code": "throttlingException", "Message": "slow"}


@pytest.mark.parametrize("fault", ["drop_after", "truncate_after"])
def test_converse_stream_cut(bedrock_server: BedrockFakeServer, fault: str) -> None:
    bedrock_server.next(**{fault: 3})
    r = bedrock_server.client().converse_stream(modelId=CLAUDE, messages=MSGS)
    seen: list[Any] = []
    if fault == "drop_after":
        with pytest.raises(Exception):  # noqa: B017 - urllib3/botocore's own error types
            seen.extend(r["stream"])
    else:
        seen.extend(r["stream"])  # ends quietly, without messageStop/metadata
    assert len(seen) == 3
    assert all("metadata" not in e for e in seen)


# -- InvokeModel ------------------------------------------------------------------------

FAMILIES = {
    CLAUDE: "anthropic",
    PROFILE: "anthropic",
    "us.amazon.nova-pro-v1:0": "nova",
    "amazon.titan-text-express-v1": "titan",
    "amazon.titan-embed-text-v2:0": "titan-embed",
    "meta.llama3-1-70b-instruct-v1:0": "llama",
    "cohere.command-r-plus-v1:0": "cohere",
    "cohere.embed-english-v3": "cohere-embed",
    "mistral.mistral-large-2407-v1:0": "mistral",
}


def _body_usage(family: str, body: dict[str, Any]) -> tuple[int, int] | None:
    if family == "anthropic":
        return body["usage"]["input_tokens"], body["usage"]["output_tokens"]
    if family == "nova":
        return body["usage"]["inputTokens"], body["usage"]["outputTokens"]
    if family == "titan":
        return body["inputTextTokenCount"], body["results"][0]["tokenCount"]
    if family == "titan-embed":
        return body["inputTextTokenCount"], 0
    if family == "llama":
        return body["prompt_token_count"], body["generation_token_count"]
    return None  # cohere, cohere-embed, mistral: the headers only


@pytest.mark.parametrize(("model_id", "family"), FAMILIES.items())
def test_invoke_model_family_bodies_and_headers(
    bedrock_server: BedrockFakeServer, model_id: str, family: str
) -> None:
    assert family_of(model_id) == family
    bedrock_server.next(usage=BedrockUsage(input_tokens=40, output_tokens=9))
    r = bedrock_server.client().invoke_model(
        modelId=model_id, body=json.dumps({"prompt": "hi", "texts": ["a", "b"]})
    )
    body = json.loads(r["body"].read())
    assert r["contentType"] == "application/json"
    usage = _body_usage(family, body)
    if usage is not None:
        assert usage == (40, 0 if family == "titan-embed" else 9)
    headers = r["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-bedrock-input-token-count"] == "40"
    assert headers["x-amzn-bedrock-output-token-count"] == "9"
    assert "x-amzn-bedrock-cache-read-input-token-count" not in headers
    assert bedrock_server.model_id(bedrock_server.last_request) == model_id
    assert bedrock_server.last_request.json == {"prompt": "hi", "texts": ["a", "b"]}


def test_invoke_model_anthropic_cache_usage(bedrock_server: BedrockFakeServer) -> None:
    bedrock_server.next(usage=CACHED)
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": []}
    r = bedrock_server.client().invoke_model(modelId=PROFILE, body=json.dumps(body))
    out = json.loads(r["body"].read())
    assert out["usage"] == {
        "input_tokens": 30,
        "cache_creation_input_tokens": 70,
        "cache_read_input_tokens": 500,
        "output_tokens": 12,
    }
    assert out["model"] == "claude-sonnet-4-20250514"
    headers = r["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-bedrock-input-token-count"] == "30"  # excludes the cache tokens
    assert headers["x-amzn-bedrock-cache-read-input-token-count"] == "500"
    assert headers["x-amzn-bedrock-cache-write-input-token-count"] == "70"


@pytest.mark.parametrize(("model_id", "family"), FAMILIES.items())
def test_invoke_model_with_response_stream_families(
    bedrock_server: BedrockFakeServer, model_id: str, family: str
) -> None:
    bedrock_server.next(usage=CACHED, chunks=4)
    r = bedrock_server.client().invoke_model_with_response_stream(
        modelId=model_id, body=json.dumps({"prompt": "hi"})
    )
    assert r["contentType"] == "application/json"
    events = list(r["body"])
    assert all(set(e) == {"chunk"} for e in events)
    objs = [json.loads(e["chunk"]["bytes"]) for e in events]
    assert all("amazon-bedrock-invocationMetrics" not in o for o in objs[:-1])
    assert objs[-1]["amazon-bedrock-invocationMetrics"] == {
        "inputTokenCount": 30,
        "outputTokenCount": 12,
        "invocationLatency": 42,
        "firstByteLatency": 10,
        "cacheReadInputTokenCount": 500,
        "cacheWriteInputTokenCount": 70,
    }
    if family == "anthropic":
        assert [o["type"] for o in objs][:2] == ["message_start", "content_block_start"]
        assert objs[0]["message"]["usage"]["cache_read_input_tokens"] == 500
        assert objs[-2]["usage"] == {"output_tokens": 12}
    if family == "llama":
        assert objs[0]["prompt_token_count"] == 30
        assert objs[-1]["generation_token_count"] == 12


def test_invoke_stream_chunk_payload_is_base64_json(bedrock_server: BedrockFakeServer) -> None:
    """On the wire a chunk is ``{"bytes": base64, "p": padding}``; botocore decodes the base64."""
    bedrock_server.next(chunks=1)
    client = bedrock_server.client()
    r = client.invoke_model_with_response_stream(modelId=CLAUDE, body=b"{}")
    raw = r["body"]._raw_stream.read()
    payloads = [json.loads(m.payload) for m in _decode(raw)]
    assert all(set(p) == {"bytes", "p"} for p in payloads)
    assert json.loads(base64.b64decode(payloads[0]["bytes"]))["type"] == "message_start"


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "ValidationException"),
        (403, "AccessDeniedException"),
        (429, "ThrottlingException"),
        (500, "InternalServerException"),
        (503, "ServiceUnavailableException"),
    ],
)
@pytest.mark.parametrize("operation", ["converse", "converse_stream", "invoke_model"])
def test_errors_map_to_client_error_codes(
    bedrock_server: BedrockFakeServer, status: int, code: str, operation: str
) -> None:
    bedrock_server.next_error(status, message="nope")
    client = bedrock_server.client()
    kwargs: dict[str, Any] = {"modelId": PROFILE}
    kwargs.update({"body": b"{}"} if operation == "invoke_model" else {"messages": MSGS})
    with pytest.raises(ClientError) as info:
        getattr(client, operation)(**kwargs)
    err = info.value
    assert type(err).__name__ == code  # botocore's modeled exception class
    assert isinstance(err, getattr(client.exceptions, code))
    assert err.response["Error"] == {"Code": code, "Message": "nope"}
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert len(bedrock_server.requests) == 1  # the client helper makes one attempt


def test_unknown_path_is_resource_not_found(bedrock_server: BedrockFakeServer) -> None:
    with pytest.raises(ClientError) as info:
        bedrock_server.client().count_tokens(modelId=CLAUDE, input={"converse": {"messages": MSGS}})
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_botocore_retries_throttling(
    bedrock_server: BedrockFakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore retries 429s itself (its default client: up to 5 attempts in legacy mode)."""
    import botocore.endpoint
    from botocore.config import Config

    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda _s: None)

    bedrock_server.next_error(429)
    client = bedrock_server.client(
        config=Config(retries={"mode": "standard", "total_max_attempts": 2})
    )
    r = client.converse(modelId=CLAUDE, messages=MSGS)
    assert r["usage"]["inputTokens"] == 21
    assert len(bedrock_server.requests) == 2
    assert bedrock_server.requests[1].headers["amz-sdk-request"].endswith("attempt=2; max=2")


# -- aiobotocore -------------------------------------------------------------------------


async def test_aiobotocore_every_operation(bedrock_server: BedrockFakeServer) -> None:
    bedrock_server.configure(usage=CACHED, chunks=2)
    async with bedrock_server.async_client() as client:
        r = await client.converse(modelId=PROFILE, messages=MSGS)
        assert r["usage"]["cacheReadInputTokens"] == 500

        r = await client.converse_stream(modelId=ARN, messages=MSGS)
        events = [e async for e in r["stream"]]
        assert events[-1]["metadata"]["usage"] == CACHED.converse_json()

        r = await client.invoke_model(modelId="meta.llama3-8b-instruct-v1:0", body=b"{}")
        body = json.loads(await r["body"].read())
        assert (body["prompt_token_count"], body["generation_token_count"]) == (30, 12)
        assert r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-input-token-count"] == "30"

        r = await client.invoke_model_with_response_stream(modelId=CLAUDE, body=b"{}")
        chunks = [json.loads(e["chunk"]["bytes"]) async for e in r["body"]]
        assert chunks[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 12

        bedrock_server.next_error(429)
        with pytest.raises(ClientError) as info:
            await client.converse(modelId=CLAUDE, messages=MSGS)
        assert info.value.response["Error"]["Code"] == "ThrottlingException"

        bedrock_server.next_error(400)
        with pytest.raises(ClientError) as info:
            await client.invoke_model_with_response_stream(modelId=CLAUDE, body=b"{}")
        assert info.value.response["Error"]["Code"] == "ValidationException"
    assert [bedrock_server.model_id(r) for r in bedrock_server.requests[:2]] == [PROFILE, ARN]


async def test_aiobotocore_stream_exception_event(bedrock_server: BedrockFakeServer) -> None:
    bedrock_server.next(error_after=1)
    async with bedrock_server.async_client() as client:
        r = await client.invoke_model_with_response_stream(modelId=CLAUDE, body=b"{}")
        with pytest.raises(EventStreamError) as info:
            async for _ in r["body"]:
                pass
    assert info.value.response["Error"]["Code"] == "modelStreamErrorException"


# -- what the instrumentation can rely on (pinned so an SDK upgrade that changes it shows) -


async def test_botocore_binding_facts(bedrock_server: BedrockFakeServer) -> None:
    """Each client gets its own freshly made class whose methods all funnel into
    ``_make_api_call(operation_name, params)`` looked up at call time; aiobotocore overrides
    it (async) in ``AioBaseClient``; unknown kwargs fail botocore's validation; the
    aiobotocore stream and body types subclass botocore's."""
    import aiobotocore.client
    import aiobotocore.eventstream
    import botocore.client
    from botocore.eventstream import EventStream
    from botocore.exceptions import ParamValidationError
    from botocore.response import StreamingBody

    c1, c2 = bedrock_server.client(), bedrock_server.client()
    assert type(c1) is not type(c2) and type(c1).__name__ == "BedrockRuntime"
    assert "converse" in vars(type(c1)) and "converse" not in vars(c1)
    assert "_make_api_call" in vars(botocore.client.BaseClient)
    with pytest.raises(ParamValidationError, match="customer_id"):
        c1.converse(modelId=CLAUDE, messages=MSGS, customer_id="c-1")
    assert bedrock_server.requests == []
    assert isinstance(c1.converse_stream(modelId=CLAUDE, messages=MSGS)["stream"], EventStream)
    assert isinstance(c1.invoke_model(modelId=CLAUDE, body=b"{}")["body"], StreamingBody)

    async with bedrock_server.async_client() as ac:
        assert isinstance(ac, aiobotocore.client.AioBaseClient)
        assert "_make_api_call" in vars(aiobotocore.client.AioBaseClient)
        r = await ac.converse_stream(modelId=CLAUDE, messages=MSGS)
        assert isinstance(r["stream"], aiobotocore.eventstream.AioEventStream)
        assert isinstance(r["stream"], EventStream)  # check for the Aio type first
        async for _ in r["stream"]:
            pass
