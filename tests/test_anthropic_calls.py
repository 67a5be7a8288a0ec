"""Every Anthropic method of SPEC §3, sync and async, plain / raw / streaming response,
under ``messages`` and ``beta.messages``: one span of our scope each, with the exact
attributes and token values (cache math included) the server sent, the SDK's own
span nested under it, and the app seeing exactly what it sees uninstrumented.

The helpers here (clients, call shapes, ``run_call``) serve the other
``test_anthropic_*`` files too.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

import anthropic
import pydantic
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from tests.servers.anthropic_server import AnthropicUsage

MODEL = "claude-haiku-4-5"
SERVED_MODEL = "claude-haiku-4-5-20251001"
RESPONSE_ID = "msg_fixed_0001"
MESSAGES = [{"role": "user", "content": "Say hi"}]
BASE_KWARGS: dict[str, Any] = {"model": MODEL, "max_tokens": 256, "messages": MESSAGES}
SDK_SCOPE = "com.anthropic.sdk.python"
# The SDK's own OpenTelemetry spans (anthropic 2.x); older SDKs have none.
NATIVE_TRACING = "open_telemetry" in inspect.signature(anthropic.Anthropic.__init__).parameters

# input 100 + cache read 1000 + cache write 50 = 1150 input tokens in all.
USAGE = AnthropicUsage(
    input_tokens=100, output_tokens=42, cache_read_input_tokens=1000, cache_creation_input_tokens=50
)


class Greeting(pydantic.BaseModel):
    greeting: str


GREETING_JSON = '{"greeting": "hi"}'


def make_client(server: Any, flavour: str, tracer_provider: Any = None) -> Any:
    """A real SDK client on the fake server; native tracing into ``tracer_provider`` when given."""
    cls = anthropic.Anthropic if flavour == "sync" else anthropic.AsyncAnthropic
    options: dict[str, Any] = {}
    if NATIVE_TRACING:
        options["open_telemetry"] = (
            {"tracer_provider": tracer_provider} if tracer_provider is not None else False
        )
    return cls(base_url=server.url, api_key="sk-ant-test", max_retries=0, **options)


@pytest.fixture
async def clients(anthropic_server, tracer_provider):
    """``clients(flavour, native=False)``: SDK clients closed at the end of the test."""
    made: list[Any] = []

    def factory(flavour: str, native: bool = False) -> Any:
        client = make_client(anthropic_server, flavour, tracer_provider if native else None)
        made.append(client)
        return client

    yield factory
    for client in made:
        await resolve(client.close())


def resource_of(client: Any, resource: str) -> Any:
    obj = client
    for part in resource.split("."):
        obj = getattr(obj, part)
    return obj


async def resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def dump(item: Any) -> Any:
    """A comparable form of what the app receives."""
    if isinstance(item, pydantic.BaseModel):
        data = item.model_dump(mode="json", warnings=False)
        parsed = getattr(item, "parsed_output", None)  # a property of ParsedMessage
        if parsed is not None:
            data["parsed_output"] = dump(parsed)
        return data
    return item


async def collect(stream: Any) -> list[Any]:
    if hasattr(stream, "__aiter__"):
        return [dump(item) async for item in stream]
    return [dump(item) for item in stream]


@dataclass(frozen=True)
class Shape:
    """One way of calling ``messages``: which method, and how its result is read."""

    name: str
    kind: str  # create | create_stream | parse | stream
    modes: tuple[str, ...] = ("plain",)
    streaming: bool = False

    @property
    def content(self) -> str | None:
        return GREETING_JSON if self.kind == "parse" else None


SHAPES = [
    Shape("create", "create", ("plain", "raw", "streaming")),
    Shape("create_stream", "create_stream", ("plain", "raw", "streaming"), streaming=True),
    Shape("parse", "parse"),
    Shape("stream", "stream", streaming=True),
]
RESOURCES = ["messages", "beta.messages"]
READERS = ["events", "text_stream", "get_final_message", "get_final_text", "until_done"]


def call_kwargs(shape: Shape, **extra: Any) -> dict[str, Any]:
    kwargs = {**BASE_KWARGS, **extra}
    if shape.kind == "create_stream":
        kwargs["stream"] = True
    if shape.kind in ("parse",):
        kwargs["output_format"] = Greeting
    return kwargs


async def read_message_stream(stream: Any, reader: str) -> list[Any]:
    """Read a ``MessageStream`` / ``AsyncMessageStream`` the way ``reader`` says."""
    if reader == "events":
        return await collect(stream)
    if reader == "text_stream":
        return await collect(stream.text_stream)
    if reader == "get_final_message":
        return [dump(await resolve(stream.get_final_message()))]
    if reader == "get_final_text":
        return [await resolve(stream.get_final_text())]
    if reader == "until_done":
        await resolve(stream.until_done())
        return [dump(stream.current_message_snapshot)]
    raise AssertionError(reader)


async def run_call(
    client: Any,
    resource: str,
    shape: Shape,
    mode: str = "plain",
    reader: str = "events",
    **extra: Any,
) -> list[Any]:
    """Make one call the way an app would and return everything the app received."""
    messages = resource_of(client, resource)
    kwargs = call_kwargs(shape, **extra)
    if shape.kind == "stream":
        manager = messages.stream(**kwargs)
        if hasattr(manager, "__aenter__"):
            async with manager as stream:
                return await read_message_stream(stream, reader)
        with manager as stream:
            return await read_message_stream(stream, reader)
    if mode == "plain":
        method = messages.parse if shape.kind == "parse" else messages.create
        result = await resolve(method(**kwargs))
        return await collect(result) if shape.streaming else [dump(result)]
    if mode == "raw":
        raw = await resolve(messages.with_raw_response.create(**kwargs))
        assert raw.headers["request-id"].startswith("req_fake")
        parsed = await resolve(raw.parse())
        return await collect(parsed) if shape.streaming else [dump(parsed)]
    if mode == "streaming":
        manager = messages.with_streaming_response.create(**kwargs)
        if hasattr(manager, "__aenter__"):
            async with manager as response:
                parsed = await response.parse()
                return await collect(parsed) if shape.streaming else [dump(parsed)]
        with manager as response:
            parsed = response.parse()
            return await collect(parsed) if shape.streaming else [dump(parsed)]
    raise AssertionError(mode)


def sdk_spans(span_exporter: Any) -> list[Any]:
    return [
        s for s in span_exporter.get_finished_spans() if s.instrumentation_scope.name == SDK_SCOPE
    ]


def assert_usage(
    attrs: dict[str, Any], *, input_tokens=1150, output_tokens=42, read=1000, write=50
):
    assert attrs["gen_ai.usage.input_tokens"] == input_tokens
    assert attrs["gen_ai.usage.output_tokens"] == output_tokens
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == read
    assert attrs["gen_ai.usage.cache_write.input_tokens"] == write


MATRIX = [
    pytest.param(shape, mode, id=f"{shape.name}-{mode}") for shape in SHAPES for mode in shape.modes
]


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize(("shape", "mode"), MATRIX)
async def test_one_span_with_exact_attributes(
    flavour, resource, shape, mode, anthropic_server, clients, instrument, spans, span_exporter
):
    anthropic_server.configure(usage=USAGE, content=shape.content, response_id=RESPONSE_ID)
    client = clients(flavour, native=True)

    items = await run_call(client, resource, shape, mode)

    assert items
    [span] = spans()
    attrs = dict(span.attributes)
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert span.name == f"chat {MODEL}"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.request.model"] == MODEL
    assert attrs["gen_ai.request.max_tokens"] == 256
    assert attrs["gen_ai.response.model"] == SERVED_MODEL
    assert attrs["gen_ai.response.id"] == RESPONSE_ID
    assert attrs["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == anthropic_server.port
    assert_usage(attrs)
    assert "error.type" not in attrs
    if shape.streaming:
        assert attrs["gen_ai.request.stream"] is True
        assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    else:
        assert "gen_ai.request.stream" not in attrs
        assert "gen_ai.response.time_to_first_chunk" not in attrs
    # The SDK's own span (native tracing on) is a child of ours, in the same trace.
    if not NATIVE_TRACING:
        return
    [native] = sdk_spans(span_exporter)
    assert native.parent is not None
    assert native.parent.span_id == span.context.span_id
    assert native.context.trace_id == span.context.trace_id
    assert len(anthropic_server.requests) == 1


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("reader", READERS)
async def test_stream_helpers_record_exact_usage(
    flavour, resource, reader, anthropic_server, clients, instrument, spans
):
    """text_stream / get_final_message / get_final_text / until_done drive the SDK's
    internal iterator; every raw event still reaches the span."""
    anthropic_server.configure(usage=USAGE, response_id=RESPONSE_ID)
    client = clients(flavour)

    items = await run_call(client, resource, SHAPES[3], reader=reader)

    assert items
    [span] = spans()
    attrs = dict(span.attributes)
    assert_usage(attrs)
    assert attrs["gen_ai.response.id"] == RESPONSE_ID
    assert attrs["gen_ai.response.model"] == SERVED_MODEL
    assert attrs["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert attrs["gen_ai.request.stream"] is True


SAME_AS_UNINSTRUMENTED = [
    *(pytest.param(shape, mode, "events", id=f"{shape.name}-{mode}") for shape, mode in (
        (s, m) for s in SHAPES for m in s.modes
    )),
    *(pytest.param(SHAPES[3], "plain", reader, id=f"stream-{reader}") for reader in READERS[1:]),
]  # fmt: skip


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize(("shape", "mode", "reader"), SAME_AS_UNINSTRUMENTED)
async def test_app_sees_what_it_would_see_uninstrumented(
    flavour, shape, mode, reader, anthropic_server, clients, instrument, spans,
    tracer_provider,
):  # fmt: skip
    anthropic_server.configure(usage=USAGE, content=shape.content, response_id=RESPONSE_ID)

    instrumented = await run_call(clients(flavour), "messages", shape, mode, reader)
    assert len(spans()) == 1
    instrument.uninstrument()
    plain = await run_call(clients(flavour), "messages", shape, mode, reader)

    instrument.instrument(tracer_provider=tracer_provider)  # for the fixture to switch off

    assert len(spans()) == 1
    assert instrumented == plain
    if shape.kind == "parse":
        assert plain[0]["parsed_output"] == {"greeting": "hi"}


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
async def test_request_parameters_and_sdk_metadata(
    flavour, shape, anthropic_server, clients, instrument, spans
):
    """The request's sampling parameters are recorded; the SDK's own ``metadata=``
    reaches Anthropic untouched."""
    anthropic_server.configure(content=shape.content)
    client = clients(flavour)

    await run_call(
        client,
        "messages",
        shape,
        # This SDK's signatures no longer have the sampling parameters.
        extra_body={"temperature": 0.25, "top_p": 0.9, "top_k": 40},
        stop_sequences=["END"],
        output_config={"effort": "low"},
        metadata={"user_id": "sdk-user-7"},
    )

    [span] = spans()
    attrs = dict(span.attributes)
    assert attrs["gen_ai.request.temperature"] == 0.25
    assert attrs["gen_ai.request.top_p"] == 0.9
    assert attrs["gen_ai.request.top_k"] == 40
    assert attrs["gen_ai.request.stop_sequences"] == ("END",)
    assert attrs["gen_ai.request.reasoning.level"] == "low"
    body = anthropic_server.last_request.json
    assert body["metadata"] == {"user_id": "sdk-user-7"}
    assert body["temperature"] == 0.25
    assert "customer_id" not in body
    assert "cmdrdata.customer_id" not in attrs


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
async def test_per_call_kwargs(flavour, shape, anthropic_server, clients, instrument, spans):
    """customer_id= / cmdrdata_metadata= label the span and never reach the SDK;
    track_usage=False makes no span. For ``stream()`` they are given to ``.stream()``."""
    anthropic_server.configure(content=shape.content)
    client = clients(flavour)

    await run_call(
        client,
        "messages",
        shape,
        customer_id="cust-42",
        cmdrdata_metadata={"plan": "pro"},
        metadata={"user_id": "sdk-user-7"},
    )
    await run_call(client, "messages", shape, track_usage=False)

    [span] = spans()
    assert span.attributes["cmdrdata.customer_id"] == "cust-42"
    assert span.attributes["cmdrdata.metadata.plan"] == "pro"
    first, second = anthropic_server.requests
    for request in (first, second):
        assert not {"customer_id", "cmdrdata_metadata", "track_usage"} & set(request.json)
    assert first.json["metadata"] == {"user_id": "sdk-user-7"}


async def test_thinking_is_counted_in_output(anthropic_server, clients, instrument, spans):
    anthropic_server.configure(
        usage=AnthropicUsage(input_tokens=10, output_tokens=300), thinking="Let me think"
    )
    client = clients("sync")

    await run_call(client, "messages", SHAPES[3])
    await run_call(client, "messages", SHAPES[0])

    for span in spans():
        assert span.attributes["gen_ai.usage.output_tokens"] == 300
        assert span.attributes["gen_ai.usage.input_tokens"] == 10


def test_platform_clients_are_named_by_platform(instrument):
    from opentelemetry_instrumentation_cmdrdata.providers.anthropic import AnthropicHooks

    hooks = AnthropicHooks(telemetry=None)  # type: ignore[arg-type]

    class AnthropicBedrock:
        base_url = anthropic.Anthropic(api_key="x").base_url.copy_with(
            host="bedrock-runtime.us-east-1.amazonaws.com"
        )

    class Resource:
        _client = AnthropicBedrock()

    assert hooks._server(Resource()) == (
        "aws.bedrock",
        "bedrock-runtime.us-east-1.amazonaws.com",
        443,
    )


def test_uninstrument_restores_every_method(tracer_provider):
    from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor
    from opentelemetry_instrumentation_cmdrdata.providers.anthropic import AnthropicHooks

    targets = AnthropicHooks.targets(AnthropicHooks.__new__(AnthropicHooks))
    owners = {}
    for target in targets:
        try:
            module = importlib.import_module(target.module)
        except ImportError:
            continue
        owner_name, attr = target.qualname.split(".")
        owner = getattr(module, owner_name, None)
        if owner is not None and attr in vars(owner):
            owners[(owner, attr)] = vars(owner)[attr]
    assert len(owners) >= 12  # messages and beta.messages, sync and async, 3 methods

    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, providers=["anthropic"])
    changed = [key for key, original in owners.items() if vars(key[0])[key[1]] is not original]
    instrumentor.uninstrument()

    assert len(changed) == len(owners)
    for (owner, attr), original in owners.items():
        assert vars(owner)[attr] is original
