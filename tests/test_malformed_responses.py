"""Malformed provider responses: the app sees exactly what the uninstrumented SDK gives it.

Each case runs one call twice against the same scripted fake-server answer: first without
instrumentation, then with it. What the caller got -- every chunk (by ``model_dump``) or the
response, and the exception (type and message) if the SDK raised -- must be identical. Then
our span must have ended exactly once, with what the provider actually sent: usage attributes
only when a usage object arrived, ``error.type`` and status ERROR exactly when the SDK raised.

Faults: a stream cut before its terminator (``truncate_after``), a dropped connection
(``drop_after``), an in-band error event (``error_after``), an HTTP error status, a stream or
response without usage, hand-made SSE bodies (``next_raw``) with unknown event types and
unknown fields, a usage chunk before the content, invalid JSON in a chunk, and an empty 200 body.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor
from opentelemetry_instrumentation_cmdrdata import semconv as sc

SSE = {"Content-Type": "text/event-stream"}
USAGE_KEYS = (
    sc.GEN_AI_USAGE_INPUT_TOKENS,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
)


def dump(obj: Any) -> Any:
    """What the caller can see of a chunk/response, minus per-request transport details."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(exclude={"sdk_http_response"}, mode="json")
    return repr(obj)


Outcome = tuple[list[Any], tuple[type, str] | None]


def consume(result: Any, seen: list[Any]) -> None:
    if hasattr(result, "__next__") or (
        hasattr(type(result), "__iter__") and not hasattr(result, "model_dump")
    ):
        for chunk in result:
            seen.append(dump(chunk))
    else:
        seen.append(dump(result))


async def aconsume(result: Any, seen: list[Any]) -> None:
    if hasattr(type(result), "__aiter__"):
        async for chunk in result:
            seen.append(dump(chunk))
    else:
        seen.append(dump(result))


def run_sync(call: Callable[[], Any]) -> Outcome:
    seen: list[Any] = []
    try:
        consume(call(), seen)
    except Exception as exc:
        return seen, (type(exc), str(exc))
    return seen, None


async def run_async(call: Callable[[], Any]) -> Outcome:
    seen: list[Any] = []
    try:
        await aconsume(await call(), seen)
    except Exception as exc:
        return seen, (type(exc), str(exc))
    return seen, None


class Twice:
    """Run a call uninstrumented, then instrumented, with the same scripted answer."""

    def __init__(self, server: Any, tracer_provider: Any, span_exporter: Any) -> None:
        self.server = server
        self.tracer_provider = tracer_provider
        self.span_exporter = span_exporter
        # google-genai closes its HTTP client when the Client object is collected: keep them.
        self.clients: list[Any] = []

    def _client(self, factory: Callable[[], Any]) -> Any:
        self.clients.append(factory())
        return self.clients[-1]

    def _ours(self) -> list[Any]:
        return [
            s
            for s in self.span_exporter.get_finished_spans()
            if s.instrumentation_scope is not None and s.instrumentation_scope.name == sc.SCOPE_NAME
        ]

    def _instrumented(self) -> CmdrDataInstrumentor:
        instrumentor = CmdrDataInstrumentor()
        instrumentor.instrument(tracer_provider=self.tracer_provider)
        return instrumentor

    def sync(
        self,
        script: Callable[[bool], None],
        call: Callable[[Any], Any],
        client_factory: Callable[[], Any],
    ) -> tuple[Outcome, Any]:
        self.server.reset()
        script(False)
        plain = run_sync(lambda: call(self._client(client_factory)))
        self.server.reset()
        script(True)
        instrumentor = self._instrumented()
        try:
            client = self._client(client_factory)
            traced = run_sync(lambda: call(client))
        finally:
            instrumentor.uninstrument()
        return self._check(plain, traced)

    async def async_(
        self,
        script: Callable[[bool], None],
        call: Callable[[Any], Any],
        client_factory: Callable[[], Any],
    ) -> tuple[Outcome, Any]:
        self.server.reset()
        script(False)
        plain = await run_async(lambda: call(self._client(client_factory)))
        self.server.reset()
        script(True)
        instrumentor = self._instrumented()
        try:
            client = self._client(client_factory)
            traced = await run_async(lambda: call(client))
        finally:
            instrumentor.uninstrument()
        return self._check(plain, traced)

    def _check(self, plain: Outcome, traced: Outcome) -> tuple[Outcome, Any]:
        assert traced[0] == plain[0], "the caller saw different chunks"
        assert traced[1] == plain[1], "the caller saw a different exception"
        ours = self._ours()
        assert len(ours) == 1, f"expected one span, got {len(ours)}"
        span = ours[0]
        assert span.end_time is not None
        attrs = dict(span.attributes or {})
        if plain[1] is None:
            assert sc.ERROR_TYPE not in attrs
            assert span.status.status_code is not StatusCode.ERROR
        else:
            assert attrs.get(sc.ERROR_TYPE) == plain[1][0].__qualname__
            assert span.status.status_code is StatusCode.ERROR
        return traced, span


def usage_of(span: Any) -> dict[str, Any]:
    return {k: v for k, v in (span.attributes or {}).items() if k in USAGE_KEYS}


def sse(*events: Any, sep: str = "\n") -> bytes:
    """An SSE body from ``(event_name_or_None, data)`` pairs or bare data (dicts become JSON);
    ``bytes`` items are written as raw lines."""
    out = []
    for item in events:
        if isinstance(item, bytes):  # a raw line, e.g. an SSE comment
            out.append(item.decode() + sep)
            continue
        name, data = item if isinstance(item, tuple) else (None, item)
        text = data if isinstance(data, str) else json.dumps(data)
        lines = ([f"event: {name}"] if name else []) + [f"data: {text}"]
        out.append(sep.join(lines) + sep + sep)
    return "".join(out).encode()


@pytest.fixture
def twice(request, tracer_provider, span_exporter):
    def make(server):
        return Twice(server, tracer_provider, span_exporter)

    return make


# -- OpenAI -----------------------------------------------------------------------------------

MESSAGES = [{"role": "user", "content": "hi"}]


def chat_chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> dict:
    delta = {} if content is None else {"content": content}
    return {
        "id": "chatcmpl-raw1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def usage_chunk(prompt: int = 11, completion: int = 5) -> dict:
    return {
        "id": "chatcmpl-raw1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def openai_stream(client: Any, **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, **kwargs
    )


def fixed(server: Any, **step: Any) -> Callable[[bool], None]:
    return lambda instrumented: server.next(**step)


def raw(server: Any, body: bytes, status: int = 200, headers=SSE) -> Callable[[bool], None]:
    return lambda instrumented: server.next_raw(status, body, headers)


OPENAI_STREAM_CASES: dict[str, tuple[Callable[[Any], Callable[[bool], None]], dict, bool]] = {
    # name: (script factory, call kwargs, usage expected on the span)
    "truncated_before_finish": (lambda s: fixed(s, truncate_after=3), {}, False),
    "truncated_before_usage": (
        lambda s: fixed(s, truncate_after=7),
        {"stream_options": {"include_usage": True}},
        False,
    ),
    "connection_dropped": (lambda s: fixed(s, drop_after=3), {}, False),
    "error_event_mid_stream": (lambda s: fixed(s, error_after=2), {}, False),
    "http_500": (lambda s: lambda i: s.next_error(500), {}, False),
    "no_usage_chunk_though_asked": (
        lambda s: fixed(s, stream_usage=False),
        {"stream_options": {"include_usage": True}},
        False,
    ),
    "no_usage_chunk_injected_but_ignored": (lambda s: fixed(s, stream_usage=False), {}, False),
    "usage_chunk_before_content_asked": (
        lambda s: raw(
            s,
            sse(usage_chunk(), chat_chunk("a"), chat_chunk("b", "stop"), "[DONE]"),
        ),
        {"stream_options": {"include_usage": True}},
        True,
    ),
    "unknown_fields_and_events": (
        lambda s: raw(
            s,
            sse(
                ("ping", {"type": "ping"}),
                chat_chunk("a", brand_new_field={"x": [1, 2]}),
                b": a comment line",
                chat_chunk(None, "stop", service_tier="flex", obfuscation="zz"),
                usage_chunk(),
                "[DONE]",
            ),
        ),
        {"stream_options": {"include_usage": True}},
        True,
    ),
    "invalid_json_chunk": (
        lambda s: raw(s, sse(chat_chunk("a"), '{"id": "x", "choices": [', "[DONE]")),
        {},
        False,
    ),
    "empty_200_body": (lambda s: raw(s, b""), {}, False),
    "no_done_terminator": (
        lambda s: raw(s, sse(chat_chunk("a"), chat_chunk(None, "stop"), usage_chunk())),
        {"stream_options": {"include_usage": True}},
        True,
    ),
}


@pytest.mark.parametrize("case", sorted(OPENAI_STREAM_CASES))
def test_openai_chat_stream_faults_sync(case, openai_server, twice):
    script, kwargs, has_usage = OPENAI_STREAM_CASES[case]
    _, span = twice(openai_server).sync(
        script(openai_server), lambda c: openai_stream(c, **kwargs), openai_server.client
    )
    usage = usage_of(span)
    if has_usage:
        assert usage[sc.GEN_AI_USAGE_INPUT_TOKENS] == 11
        assert usage[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    else:
        assert usage == {}, usage


@pytest.mark.parametrize(
    "case",
    [
        "truncated_before_finish",
        "connection_dropped",
        "error_event_mid_stream",
        "usage_chunk_before_content_asked",
        "invalid_json_chunk",
        "empty_200_body",
    ],
)
async def test_openai_chat_stream_faults_async(case, openai_server, twice):
    script, kwargs, has_usage = OPENAI_STREAM_CASES[case]

    async def call(client):
        return await openai_stream(client, **kwargs)

    _, span = await twice(openai_server).async_(
        script(openai_server), call, openai_server.async_client
    )
    assert bool(usage_of(span)) is has_usage


def test_openai_usage_chunk_before_content_not_asked_is_hidden(openai_server, twice):
    """The instrumentor asks for usage; a server that answers with the usage chunk *first*
    must not make the caller (who did not ask) see it."""
    content = [chat_chunk("a"), chat_chunk("b", "stop")]

    def script(instrumented: bool) -> None:
        # What a real server does: the usage chunk only when the request asked for it.
        body = [usage_chunk(), *content] if instrumented else content
        openai_server.next_raw(200, sse(*body, "[DONE]"), SSE)

    (chunks, error), span = twice(openai_server).sync(script, openai_stream, openai_server.client)
    assert error is None and len(chunks) == 2
    assert usage_of(span)[sc.GEN_AI_USAGE_INPUT_TOKENS] == 11


def chat_body(**overrides: Any) -> dict:
    body = {
        "id": "chatcmpl-raw2",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi"},
                "finish_reason": "stop",
            }
        ],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


OPENAI_PLAIN_CASES = {
    "missing_usage": (chat_body(), False),
    "null_usage": (json.dumps({**chat_body(), "usage": None}).encode(), False),
    "unknown_fields": (
        chat_body(usage={"prompt_tokens": 11, "completion_tokens": 5, "x": 1}, y=2),
        True,
    ),
    "negative_usage": (chat_body(usage={"prompt_tokens": -1, "completion_tokens": 5}), "output"),
    "string_usage": (chat_body(usage={"prompt_tokens": "11", "completion_tokens": 5.0}), False),
    "invalid_json": (b'{"id": "x", "choices": [', False),
    "empty_body": (b"", False),
    "not_an_object": (b"[1, 2, 3]", False),
}


@pytest.mark.parametrize("case", sorted(OPENAI_PLAIN_CASES))
def test_openai_chat_malformed_response(case, openai_server, twice):
    body, expected = OPENAI_PLAIN_CASES[case]
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    _, span = twice(openai_server).sync(
        lambda i: openai_server.next_raw(200, body, {"Content-Type": "application/json"}),
        lambda c: c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
        openai_server.client,
    )
    usage = usage_of(span)
    if expected is True:
        assert usage == {sc.GEN_AI_USAGE_INPUT_TOKENS: 11, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5}
    elif expected == "output":
        assert usage == {sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5}
    else:
        assert usage == {}, usage


RESPONSES_CASES = {
    "truncated": (lambda s: fixed(s, truncate_after=4), False),
    "dropped": (lambda s: fixed(s, drop_after=4), False),
    "error_event": (lambda s: fixed(s, error_after=3), False),
    "unknown_event_type": (
        lambda s: raw(
            s,
            sse(
                ("response.brand_new", {"type": "response.brand_new", "sequence_number": 0}),
                (
                    "response.completed",
                    {
                        "type": "response.completed",
                        "sequence_number": 1,
                        "response": {
                            "id": "resp_raw",
                            "object": "response",
                            "created_at": 1700000000,
                            "model": "gpt-4o",
                            "status": "completed",
                            "output": [],
                            "usage": {"input_tokens": 11, "output_tokens": 5, "total_tokens": 16},
                        },
                    },
                ),
            ),
        ),
        True,
    ),
}


@pytest.mark.parametrize("case", sorted(RESPONSES_CASES))
def test_openai_responses_stream_faults(case, openai_server, twice):
    script, has_usage = RESPONSES_CASES[case]
    _, span = twice(openai_server).sync(
        script(openai_server),
        lambda c: c.responses.create(model="gpt-4o", input="hi", stream=True),
        openai_server.client,
    )
    assert bool(usage_of(span)) is has_usage


# -- Anthropic --------------------------------------------------------------------------------


def anthropic_stream(client: Any) -> Any:
    return client.messages.create(
        model="claude-test-model", max_tokens=50, messages=MESSAGES, stream=True
    )


def message_start(usage: dict | None) -> tuple[str, dict]:
    message = {
        "id": "msg_raw",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [],
        "stop_reason": None,
    }
    if usage is not None:
        message["usage"] = usage
    return "message_start", {"type": "message_start", "message": message}


TEXT_EVENTS = [
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a"}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
]
DELTA = (
    "message_delta",
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}},
)
STOP = ("message_stop", {"type": "message_stop"})

ANTHROPIC_STREAM_CASES = {
    # name: (script factory, expected usage attributes)
    "truncated": (lambda s: fixed(s, truncate_after=4), {sc.GEN_AI_USAGE_INPUT_TOKENS: 17}),
    "dropped": (lambda s: fixed(s, drop_after=4), {sc.GEN_AI_USAGE_INPUT_TOKENS: 17}),
    "error_event": (lambda s: fixed(s, error_after=3), {sc.GEN_AI_USAGE_INPUT_TOKENS: 17}),
    "http_529": (lambda s: lambda i: s.next_error(529), {}),
    "no_usage_anywhere": (
        lambda s: raw(
            s,
            sse(
                message_start(None),
                *TEXT_EVENTS,
                ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
                STOP,
            ),
        ),
        {},
    ),
    "unknown_events_and_fields": (
        lambda s: raw(
            s,
            sse(
                message_start({"input_tokens": 7, "output_tokens": 1, "brand_new": 3}),
                ("ping", {"type": "ping"}),
                ("brand_new_event", {"type": "brand_new_event", "x": 1}),
                *TEXT_EVENTS,
                DELTA,
                STOP,
            ),
        ),
        {sc.GEN_AI_USAGE_INPUT_TOKENS: 7, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5},
    ),
    "no_message_stop": (
        lambda s: raw(s, sse(message_start({"input_tokens": 7}), *TEXT_EVENTS, DELTA)),
        {sc.GEN_AI_USAGE_INPUT_TOKENS: 7, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5},
    ),
    "invalid_json_event": (
        lambda s: raw(
            s,
            sse(message_start({"input_tokens": 7}), ("content_block_delta", '{"type": "cont')),
        ),
        {sc.GEN_AI_USAGE_INPUT_TOKENS: 7},
    ),
    "empty_200_body": (lambda s: raw(s, b""), {}),
}


def anthropic_usage(span: Any) -> dict[str, Any]:
    usage = usage_of(span)
    return {
        k: v
        for k, v in usage.items()
        if k in (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_OUTPUT_TOKENS)
        and not (k == sc.GEN_AI_USAGE_OUTPUT_TOKENS and v == 1)  # message_start's placeholder
    }


@pytest.mark.parametrize("case", sorted(ANTHROPIC_STREAM_CASES))
def test_anthropic_stream_faults_sync(case, anthropic_server, twice):
    script, expected = ANTHROPIC_STREAM_CASES[case]
    _, span = twice(anthropic_server).sync(
        script(anthropic_server), anthropic_stream, anthropic_server.client
    )
    assert anthropic_usage(span) == expected


@pytest.mark.parametrize("case", ["truncated", "dropped", "error_event", "invalid_json_event"])
async def test_anthropic_stream_faults_async(case, anthropic_server, twice):
    script, expected = ANTHROPIC_STREAM_CASES[case]

    async def call(client):
        return await anthropic_stream(client)

    _, span = await twice(anthropic_server).async_(
        script(anthropic_server), call, anthropic_server.async_client
    )
    assert anthropic_usage(span) == expected


@pytest.mark.parametrize("case", ["truncated", "error_event", "no_message_stop"])
def test_anthropic_stream_helper_faults(case, anthropic_server, twice):
    """``messages.stream()`` + ``get_final_message()`` over the same faults."""
    script, expected = ANTHROPIC_STREAM_CASES[case]

    def call(client):
        with client.messages.stream(
            model="claude-test-model", max_tokens=50, messages=MESSAGES
        ) as stream:
            return stream.get_final_message()

    _, span = twice(anthropic_server).sync(script(anthropic_server), call, anthropic_server.client)
    assert anthropic_usage(span) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", {}),
        (b'{"id": "msg_x", "type": "mess', {}),
        (
            json.dumps(
                {
                    "id": "msg_x",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-x",
                    "content": [],
                    "stop_reason": "end_turn",
                }
            ).encode(),
            {},
        ),
    ],
    ids=["empty", "invalid_json", "missing_usage"],
)
def test_anthropic_malformed_response(body, expected, anthropic_server, twice):
    _, span = twice(anthropic_server).sync(
        lambda i: anthropic_server.next_raw(200, body, {"Content-Type": "application/json"}),
        lambda c: c.messages.create(model="claude-test-model", max_tokens=50, messages=MESSAGES),
        anthropic_server.client,
    )
    assert usage_of(span) == expected


# -- Gemini -----------------------------------------------------------------------------------


def gemini_chunk(text: str | None, usage: dict | None, finish: str | None = None) -> dict:
    chunk: dict[str, Any] = {"responseId": "raw1", "modelVersion": "gemini-2.5-flash"}
    if text is not None or finish is not None:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text or ""}]}}
        if finish:
            candidate["finishReason"] = finish
        chunk["candidates"] = [candidate]
    if usage is not None:
        chunk["usageMetadata"] = usage
    return chunk


def gemini_stream(client: Any) -> Any:
    return client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")


GEMINI_STREAM_CASES = {
    # The fake's chunks carry cumulative usage: prompt 19, candidates growing to 11.
    "truncated": (lambda s: fixed(s, truncate_after=2), "partial"),
    "dropped": (lambda s: fixed(s, drop_after=2), "partial"),
    "error_event": (lambda s: fixed(s, error_after=2), "partial"),
    "http_503": (lambda s: lambda i: s.next_error(503), "none"),
    "no_usage": (
        lambda s: raw(
            s,
            sse(gemini_chunk("a", None), gemini_chunk("b", None, "STOP"), sep="\r\n"),
        ),
        "none",
    ),
    "unknown_fields": (
        lambda s: raw(
            s,
            sse(
                {**gemini_chunk("a", {"promptTokenCount": 9}), "brandNew": {"x": 1}},
                gemini_chunk(
                    "b",
                    {"promptTokenCount": 9, "candidatesTokenCount": 4, "newCount": 2},
                    "STOP",
                ),
                sep="\r\n",
            ),
        ),
        {sc.GEN_AI_USAGE_INPUT_TOKENS: 9, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 4},
    ),
    "invalid_json_chunk": (
        lambda s: raw(
            s, sse(gemini_chunk("a", {"promptTokenCount": 9}), '{"candidates": [', sep="\r\n")
        ),
        {sc.GEN_AI_USAGE_INPUT_TOKENS: 9},
    ),
    "empty_200_body": (lambda s: raw(s, b""), "none"),
}


def check_gemini_usage(span: Any, expected: Any) -> None:
    usage = usage_of(span)
    if expected == "none":
        assert usage == {}
    elif expected == "partial":
        # Only what the chunks before the fault reported: a running count, never a sum.
        assert usage[sc.GEN_AI_USAGE_INPUT_TOKENS] == 19
        assert 0 <= usage.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0) <= 11
    else:
        assert usage == expected


@pytest.mark.parametrize("case", sorted(GEMINI_STREAM_CASES))
def test_gemini_stream_faults_sync(case, gemini_server, twice):
    script, expected = GEMINI_STREAM_CASES[case]
    _, span = twice(gemini_server).sync(script(gemini_server), gemini_stream, gemini_server.client)
    check_gemini_usage(span, expected)


@pytest.mark.parametrize("case", ["truncated", "dropped", "error_event", "invalid_json_chunk"])
async def test_gemini_stream_faults_async(case, gemini_server, twice):
    script, expected = GEMINI_STREAM_CASES[case]
    clients = []

    def factory():
        clients.append(gemini_server.client())
        return clients[-1]

    async def call(client):
        return await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="hi"
        )

    _, span = await twice(gemini_server).async_(script(gemini_server), call, factory)
    check_gemini_usage(span, expected)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "none"),
        (b'{"candidates": [', "none"),
        (json.dumps(gemini_chunk("a", None, "STOP")).encode(), "none"),
        (
            json.dumps(
                gemini_chunk("a", {"promptTokenCount": -3, "candidatesTokenCount": 4})
            ).encode(),
            {sc.GEN_AI_USAGE_OUTPUT_TOKENS: 4},
        ),
    ],
    ids=["empty", "invalid_json", "missing_usage", "negative_prompt"],
)
def test_gemini_malformed_response(body, expected, gemini_server, twice):
    clients = []

    def factory():
        clients.append(gemini_server.client())
        return clients[-1]

    _, span = twice(gemini_server).sync(
        lambda i: gemini_server.next_raw(200, body, {"Content-Type": "application/json"}),
        lambda c: c.models.generate_content(model="gemini-2.5-flash", contents="hi"),
        factory,
    )
    check_gemini_usage(span, expected)
