"""The instrumentor's own contract: wrap, restore exactly, suppress, skip what is missing."""

from __future__ import annotations

import importlib
import inspect
import logging

import openai
import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation

from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor
from opentelemetry_instrumentation_cmdrdata.patching import wrap_target
from opentelemetry_instrumentation_cmdrdata.providers.base import MethodTarget
from opentelemetry_instrumentation_cmdrdata.providers.openai import OpenAIHooks, provider_for_host
from opentelemetry_instrumentation_cmdrdata.telemetry import build_telemetry

MESSAGES = [{"role": "user", "content": "hi"}]
# openai 3.x talks through httpx2, openai 2.x through httpx.
HTTP = getattr(openai._base_client, "httpx2", None) or openai._base_client.httpx
CHAT = importlib.import_module("openai.resources.chat.completions.completions")


def _originals():
    responses = importlib.import_module("openai.resources.responses.responses")
    embeddings = importlib.import_module("openai.resources.embeddings")
    completions = importlib.import_module("openai.resources.completions")
    owners = [
        CHAT.Completions,
        CHAT.AsyncCompletions,
        responses.Responses,
        responses.AsyncResponses,
        embeddings.Embeddings,
        completions.AsyncCompletions,
    ]
    return {
        (owner.__name__, name): value
        for owner in owners
        for name, value in vars(owner).items()
        if inspect.isfunction(value) or hasattr(value, "__wrapped__")
    }


def test_uninstrument_restores_every_method_exactly(tracer_provider):
    before = _originals()
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    wrapped = {key for key, value in _originals().items() if value is not before[key]}
    assert ("Completions", "create") in wrapped and ("Responses", "parse") in wrapped
    instrumentor.uninstrument()
    # the very same function objects as before (wrapt proxies compare equal, so use `is`)
    assert all(value is before[key] for key, value in _originals().items())
    instrumentor.uninstrument()  # safe to call twice
    assert all(value is before[key] for key, value in _originals().items())


def test_instrument_twice_is_safe(tracer_provider, openai_server, make_openai_client, spans):
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        make_openai_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert len(spans()) == 1
    finally:
        instrumentor.uninstrument()


def test_no_span_after_uninstrument_even_through_cached_raw_wrapper(
    tracer_provider, openai_server, make_openai_client, spans
):
    client = make_openai_client()
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    raw_create = client.chat.completions.with_raw_response.create  # cached by the SDK
    instrumentor.uninstrument()
    raw_create(model="gpt-4o-mini", messages=MESSAGES, customer_id="c").parse()
    assert spans() == []
    assert "customer_id" not in openai_server.requests[-1].json


def test_suppress_instrumentation_gives_no_span(
    instrument, openai_server, make_openai_client, spans
):
    client = make_openai_client()
    with suppress_instrumentation():
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert spans() == []
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(spans()) == 1


@pytest.mark.parametrize("key", ["context-key", "plain-string-key"])
def test_either_suppression_key_alone_gives_no_span(
    key, instrument, openai_server, make_openai_client, spans
):
    from opentelemetry import context as otel_context

    ctx = (
        otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True)
        if key == "context-key"
        else otel_context.set_value("suppress_instrumentation", True)
    )
    token = otel_context.attach(ctx)
    try:
        make_openai_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        otel_context.detach(token)
    assert spans() == []


def test_providers_subset(tracer_provider, openai_server, make_openai_client, spans):
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, providers=["anthropic"])
    try:
        make_openai_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert spans() == []
    finally:
        instrumentor.uninstrument()


def test_contract_names_not_instrumented_yet_are_accepted_with_a_warning(
    tracer_provider, openai_server, make_openai_client, spans, caplog
):
    """SPEC section 2 names every SDK of section 9: naming one must never break the app, and a
    call it would not bill is said out loud."""
    instrumentor = CmdrDataInstrumentor()
    with caplog.at_level(logging.WARNING, logger="opentelemetry_instrumentation_cmdrdata"):
        instrumentor.instrument(tracer_provider=tracer_provider, providers=["openai", "bedrock"])
    try:
        make_openai_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert len(spans()) == 1
        assert any("bedrock calls are not instrumented" in r.getMessage() for r in caplog.records)
    finally:
        instrumentor.uninstrument()


def test_unknown_provider_name_is_a_clear_error(tracer_provider):
    with pytest.raises(ValueError, match="unknown provider"):
        CmdrDataInstrumentor().instrument(tracer_provider=tracer_provider, providers=["opneai"])
    CmdrDataInstrumentor().uninstrument()


def test_missing_sdk_method_is_skipped_with_one_debug_log(caplog):
    telemetry = build_telemetry()
    hooks = OpenAIHooks(telemetry)
    missing = MethodTarget(CHAT.__name__, "Completions.create_v2_renamed", "chat", False, "chat")
    gone_module = MethodTarget("openai.resources.not_there", "X.create", "chat", False, "chat")
    with caplog.at_level(logging.DEBUG, logger="opentelemetry_instrumentation_cmdrdata"):
        assert wrap_target(hooks, missing, telemetry) is False
        assert wrap_target(hooks, gone_module, telemetry) is False
    assert len([r for r in caplog.records if "not instrumented" in r.getMessage()]) == 2


def test_no_span_nesting_when_sdk_helper_calls_create(
    instrument, openai_server, make_openai_client, spans
):
    client = make_openai_client()
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        stream.until_done()
    assert len(spans()) == 1


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("api.openai.com", 443, "openai"),
        ("my-team.openai.azure.com", 443, "azure.ai.openai"),
        ("api.groq.com", 443, "groq"),
        ("api.mistral.ai", 443, "mistral_ai"),
        ("api.deepseek.com", 443, "deepseek"),
        ("api.x.ai", 443, "x_ai"),
        ("api.together.xyz", 443, "together_ai"),
        ("openrouter.ai", 443, "openrouter"),
        ("localhost", 11434, "ollama"),
        ("evil-api.groq.com.example.org", 443, "openai"),
        ("127.0.0.1", 8080, "openai"),
    ],
)
def test_provider_name_from_host(host, port, expected):
    assert provider_for_host(host, port) == expected


def test_provider_name_reaches_the_span(instrument, openai_server, spans):
    """A client whose base URL names Groq gets gen_ai.provider.name=groq."""

    def handler(request):
        return HTTP.Response(
            200,
            json={
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": "llama-3.1-8b-instant",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "hi"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            },
        )

    client = openai.OpenAI(
        base_url="https://api.groq.com/openai/v1",
        api_key="gsk-test",
        http_client=HTTP.Client(transport=HTTP.MockTransport(handler)),
    )
    client.chat.completions.create(model="llama-3.1-8b-instant", messages=MESSAGES)
    [span] = spans()
    assert span.attributes["gen_ai.provider.name"] == "groq"
    assert span.attributes["server.address"] == "api.groq.com"
    assert span.attributes["server.port"] == 443


def test_span_is_current_during_the_http_request(
    instrument, openai_server, make_openai_client, spans
):
    """HTTP client spans (and the SDK's own) nest under ours: our span is current."""
    from opentelemetry import trace

    seen = []

    def hook(request):
        seen.append(trace.get_current_span().get_span_context().span_id)

    client = make_openai_client(http_client=HTTP.Client(event_hooks={"request": [hook]}))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    [span] = spans()
    assert seen == [span.context.span_id]
