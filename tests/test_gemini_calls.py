"""Google Gen AI (Gemini): generate_content and embed_content, sync and async, against the
real SDK and the local fake server -- exact tokens, request parameters, Vertex AI, per-call
keywords, errors and chat sessions."""

import pytest
from google.genai import errors, types
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode

from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor, customer_context
from opentelemetry_instrumentation_cmdrdata.providers.google_genai import (
    GoogleGenAIHooks,
    config_fields,
    request_model,
)
from tests.loop_runner import LoopRunner
from tests.servers.gemini_server import GeminiUsage

MODEL = "gemini-2.5-flash"
# google-genai reads usageMetadata of embedding responses since 2.x (1.30 drops it).
SDK_READS_EMBED_USAGE = "usage_metadata" in types.EmbedContentResponse.model_fields
# The contract's worked example: thoughts go into output, cached tokens stay inside input.
USAGE = GeminiUsage(
    prompt_token_count=100,
    candidates_token_count=40,
    thoughts_token_count=25,
    cached_content_token_count=60,
)


@pytest.fixture(scope="module")
def client(gemini_server_session):
    """One SDK client for the module: building one costs ~0.2 s (TLS contexts)."""
    return gemini_server_session.client()


@pytest.fixture(scope="module")
def vertex_clients(gemini_server_session):
    return {
        express: gemini_server_session.vertex_client(express=express) for express in (False, True)
    }


_runner = LoopRunner()
run = _runner.run


@pytest.fixture(scope="module", autouse=True)
def _close_loop():
    yield
    _runner.close()


def generate(client, mode, **kwargs):
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("contents", "Say hi")
    if mode == "async":
        return run(client.aio.models.generate_content(**kwargs))
    return client.models.generate_content(**kwargs)


def embed(client, mode, **kwargs):
    kwargs.setdefault("contents", ["one", "two"])
    if mode == "async":
        return run(client.aio.models.embed_content(**kwargs))
    return client.models.embed_content(**kwargs)


def assert_usage(span, input_tokens, output_tokens, cache_read=None, reasoning=None):
    attributes = span.attributes
    assert attributes["gen_ai.usage.input_tokens"] == input_tokens
    assert attributes["gen_ai.usage.output_tokens"] == output_tokens
    assert attributes.get("gen_ai.usage.cache_read.input_tokens") == cache_read
    assert attributes.get("gen_ai.usage.reasoning.output_tokens") == reasoning
    assert "gen_ai.usage.cache_write.input_tokens" not in attributes


# -- generate_content ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_generate_content_exact_usage(gemini_server, instrument, spans, mode, client):
    gemini_server.next(usage=USAGE, model="gemini-2.5-flash-001", response_id="resp-42")
    response = generate(client, mode)

    assert response.text == "t0 t1 t2 t3 t4 "
    [span] = spans()
    assert span.name == "generate_content gemini-2.5-flash"
    assert span.kind.name == "CLIENT"
    attributes = span.attributes
    assert attributes["gen_ai.operation.name"] == "generate_content"
    assert attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.response.model"] == "gemini-2.5-flash-001"
    assert attributes["gen_ai.response.id"] == "resp-42"
    assert attributes["gen_ai.response.finish_reasons"] == ("STOP",)
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == gemini_server.port
    assert "gen_ai.request.stream" not in attributes
    assert_usage(span, 100, 65, cache_read=60, reasoning=25)
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_counts_the_api_omits_stay_unset(gemini_server, instrument, spans, mode, client):
    # The real API leaves zero counts out: no thoughts, no cache -> attributes absent.
    gemini_server.next(usage=GeminiUsage(prompt_token_count=7, candidates_token_count=3))
    generate(client, mode)

    [span] = spans()
    assert_usage(span, 7, 3)


def test_tool_use_prompt_tokens_are_input(gemini_server, instrument, spans, client):
    # Tool results fed back to the model are reported apart from the prompt, billed as input.
    gemini_server.next(
        usage=GeminiUsage(
            prompt_token_count=50, candidates_token_count=10, tool_use_prompt_token_count=30
        )
    )
    response = generate(client, "sync")

    assert response.usage_metadata.total_token_count == 90
    [span] = spans()
    assert_usage(span, 80, 10)


def test_finish_reason_is_the_api_string(gemini_server, instrument, spans, client):
    gemini_server.next(finish_reason="MAX_TOKENS")
    generate(client, "sync")

    assert spans()[0].attributes["gen_ai.response.finish_reasons"] == ("MAX_TOKENS",)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_request_parameters_from_config_object(gemini_server, instrument, spans, mode, client):
    config = types.GenerateContentConfig(
        max_output_tokens=256,
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END"],
        seed=7,
        candidate_count=2,
        presence_penalty=0.5,
        frequency_penalty=0.25,
        response_mime_type="application/json",
    )
    generate(client, mode, config=config)

    attributes = spans()[0].attributes
    assert attributes["gen_ai.request.max_tokens"] == 256
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["gen_ai.request.top_p"] == 0.9
    assert attributes["gen_ai.request.top_k"] == 40
    assert attributes["gen_ai.request.stop_sequences"] == ("END",)
    assert attributes["gen_ai.request.seed"] == 7
    assert attributes["gen_ai.request.choice.count"] == 2
    assert attributes["gen_ai.request.presence_penalty"] == 0.5
    assert attributes["gen_ai.request.frequency_penalty"] == 0.25
    assert attributes["gen_ai.output.type"] == "json"
    sent = gemini_server.requests[-1].json["generationConfig"]
    assert sent["maxOutputTokens"] == 256 and sent["stopSequences"] == ["END"]


def test_request_parameters_from_config_dict(gemini_server, instrument, spans, client):
    config = {"max_output_tokens": 64, "temperature": 1, "topK": 3.0, "candidateCount": 1}
    generate(client, "sync", config=config)

    attributes = spans()[0].attributes
    assert attributes["gen_ai.request.max_tokens"] == 64
    assert attributes["gen_ai.request.temperature"] == 1
    assert attributes["gen_ai.request.top_k"] == 3.0
    assert "gen_ai.request.choice.count" not in attributes
    assert config == {"max_output_tokens": 64, "temperature": 1, "topK": 3.0, "candidateCount": 1}


def test_config_fields_both_spellings_and_forms():
    # snake_case wins over camelCase in a dict, whatever the order; None means unset.
    assert config_fields({"maxOutputTokens": 9, "max_output_tokens": 5}) == {"max_output_tokens": 5}
    assert config_fields({"max_output_tokens": None, "maxOutputTokens": 9}) == {
        "max_output_tokens": 9
    }
    assert config_fields({"httpOptions": {"baseUrl": "https://p.example"}, "extra": 1}) == {
        "http_options": {"baseUrl": "https://p.example"},
        "extra": 1,
    }
    config = types.GenerateContentConfig(temperature=0.5, stop_sequences=["x"])
    assert config_fields(config) == {"temperature": 0.5, "stop_sequences": ["x"]}
    assert config_fields(None) == {}

    class Plain:  # not pydantic, no __dict__ entry for most fields
        __slots__ = ("seed",)

        def __init__(self) -> None:
            self.seed = 3

    assert config_fields(Plain()) == {"seed": 3}


def test_per_call_base_url_in_a_config_dict(client):
    hooks = GoogleGenAIHooks(telemetry=None)
    target = next(t for t in hooks.targets() if t.qualname == "Models._generate_content")
    config = {"httpOptions": {"baseUrl": "https://proxy.example:8443/"}}
    info, _ = hooks.request(target, client.models, {"model": MODEL, "config": config})
    assert (info.server_address, info.server_port) == ("proxy.example", 8443)


def test_models_prefix_is_removed_from_the_request_model(gemini_server, instrument, spans, client):
    generate(client, "sync", model="models/gemini-2.0-flash")

    [span] = spans()
    assert span.name == "generate_content gemini-2.0-flash"
    assert span.attributes["gen_ai.request.model"] == "gemini-2.0-flash"
    assert gemini_server.requests[-1].path.endswith("/models/gemini-2.0-flash:generateContent")


def test_request_model_names():
    assert request_model("gemini-2.5-pro") == "gemini-2.5-pro"
    assert request_model("models/gemini-2.5-pro") == "gemini-2.5-pro"
    assert (
        request_model("projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro")
        == "gemini-2.5-pro"
    )
    assert request_model("publishers/google/models/gemini-2.5-pro") == "gemini-2.5-pro"
    assert request_model("tunedModels/1234") == "tunedModels/1234"
    assert (
        request_model("projects/p/locations/l/endpoints/99")
        == "projects/p/locations/l/endpoints/99"
    )
    assert request_model(None) is None


@pytest.mark.skipif(
    "should_return_http_response" not in types.GenerateContentConfig.model_fields,
    reason="this google-genai has no should_return_http_response",
)
def test_raw_http_response_config_still_reports_usage(gemini_server, instrument, spans, client):
    # should_return_http_response: the SDK hands back the body unparsed.
    gemini_server.next(usage=USAGE, response_id="raw-1")
    config = types.GenerateContentConfig(should_return_http_response=True)
    response = generate(client, "sync", config=config)

    assert response.sdk_http_response.body
    [span] = spans()
    assert span.attributes["gen_ai.response.id"] == "raw-1"
    assert span.attributes["gen_ai.response.finish_reasons"] == ("STOP",)
    assert_usage(span, 100, 65, cache_read=60, reasoning=25)


# -- embed_content -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_embed_content_reports_api_input_tokens(gemini_server, instrument, spans, mode, client):
    gemini_server.next(usage=GeminiUsage(prompt_token_count=12, candidates_token_count=0))
    response = embed(
        client,
        mode,
        model="gemini-embedding-001",
        config=types.EmbedContentConfig(output_dimensionality=8),
    )

    assert len(response.embeddings) == 2
    [span] = spans()
    assert span.name == "embeddings gemini-embedding-001"
    attributes = span.attributes
    assert attributes["gen_ai.operation.name"] == "embeddings"
    assert attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert attributes["gen_ai.request.model"] == "gemini-embedding-001"
    assert attributes["gen_ai.embeddings.dimension.count"] == 8
    if SDK_READS_EMBED_USAGE:
        assert attributes["gen_ai.usage.input_tokens"] == 12
    else:  # older SDKs drop usageMetadata: nothing to report, nothing estimated
        assert "gen_ai.usage.input_tokens" not in attributes
    assert "gen_ai.usage.output_tokens" not in attributes
    assert gemini_server.requests[-1].path.endswith(":batchEmbedContents")


def test_embed_content_without_usage_is_never_estimated(gemini_server, instrument, spans, client):
    gemini_server.next(embed_usage=False)
    embed(client, "sync", model="gemini-embedding-001")

    [span] = spans()
    assert "gen_ai.usage.input_tokens" not in span.attributes
    assert span.status.status_code is StatusCode.UNSET


# -- Vertex AI -----------------------------------------------------------------------------


@pytest.mark.parametrize("express", [False, True], ids=["project", "express"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vertex_ai_generate_content(
    gemini_server, instrument, spans, mode, express, vertex_clients
):
    gemini_server.next(usage=USAGE)
    generate(vertex_clients[express], mode)

    assert "/publishers/google/models/gemini-2.5-flash:generateContent" in (
        gemini_server.requests[-1].path
    )
    [span] = spans()
    assert span.attributes["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert span.attributes["server.address"] == "127.0.0.1"
    assert_usage(span, 100, 65, cache_read=60, reasoning=25)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vertex_ai_predict_embeddings_sum_per_embedding_statistics(
    gemini_server, instrument, spans, mode, vertex_clients
):
    gemini_server.next(usage=GeminiUsage(prompt_token_count=18, candidates_token_count=0))
    embed(vertex_clients[False], mode, model="text-embedding-005")

    assert gemini_server.requests[-1].path.endswith("/text-embedding-005:predict")
    [span] = spans()
    assert span.attributes["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert span.attributes["gen_ai.usage.input_tokens"] == 18  # 9 + 9


def test_vertex_ai_embed_content_api(gemini_server, instrument, spans, vertex_clients):
    gemini_server.next(usage=GeminiUsage(prompt_token_count=5, candidates_token_count=0))
    embed(vertex_clients[False], "sync", model="gemini-embedding-001", contents="one")

    path = gemini_server.requests[-1].path
    assert path.endswith(("/gemini-embedding-001:embedContent", "/gemini-embedding-001:predict"))
    assert spans()[0].attributes["gen_ai.usage.input_tokens"] == 5


def test_server_address_defaults_to_the_public_endpoints():
    import google.oauth2.credentials
    from google import genai

    hooks = GoogleGenAIHooks(telemetry=None)
    [target] = [t for t in hooks.targets() if t.qualname == "Models.generate_content"]

    gemini = genai.Client(api_key="test-key")
    info, _ = hooks.request(target, gemini.models, {"model": MODEL})
    assert (info.provider_name, info.server_address, info.server_port) == (
        "gcp.gemini",
        "generativelanguage.googleapis.com",
        443,
    )
    vertex = genai.Client(
        vertexai=True,
        project="p",
        location="europe-west4",
        credentials=google.oauth2.credentials.Credentials(token="t"),
    )
    info, _ = hooks.request(target, vertex.models, {"model": MODEL})
    assert (info.provider_name, info.server_address, info.server_port) == (
        "gcp.vertex_ai",
        "europe-west4-aiplatform.googleapis.com",
        443,
    )
    # A per-call base URL in config.http_options wins for that call.
    config = types.GenerateContentConfig(
        http_options=types.HttpOptions(base_url="https://proxy.example:8443/")
    )
    info, kwargs = hooks.request(target, gemini.models, {"model": MODEL, "config": config})
    assert (info.server_address, info.server_port) == ("proxy.example", 8443)
    assert kwargs["config"] is config


# -- per-call keywords, attribution, suppression --------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_per_call_customer_and_metadata(gemini_server, instrument, spans, mode, client):
    generate(
        client,
        mode,
        customer_id="cust-7",
        cmdrdata_metadata={"plan": "pro"},
    )

    attributes = spans()[0].attributes
    assert attributes["cmdrdata.customer_id"] == "cust-7"
    assert attributes["cmdrdata.metadata.plan"] == "pro"
    sent = gemini_server.requests[-1]
    assert "customer_id" not in sent.raw_body.decode()
    assert "baggage" not in sent.headers


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_track_usage_false_makes_no_span(gemini_server, instrument, spans, mode, client):
    response = generate(client, mode, track_usage=False)
    embed(client, mode, model="gemini-embedding-001", track_usage=False)

    assert response.text
    assert len(gemini_server.requests) == 2
    assert spans() == []


def test_customer_context_attributes_the_call(gemini_server, instrument, spans, client):
    with customer_context("cust-ctx", team="search"):
        generate(client, "sync")

    attributes = spans()[0].attributes
    assert attributes["cmdrdata.customer_id"] == "cust-ctx"
    assert attributes["cmdrdata.metadata.team"] == "search"
    assert "baggage" not in gemini_server.requests[-1].headers


def test_suppress_instrumentation(gemini_server, instrument, spans, client):
    with suppress_instrumentation():
        generate(client, "sync")
    assert spans() == []


def test_uninstrument_restores_the_sdk_methods(tracer_provider, gemini_server, spans, client):
    from google.genai import models

    # The public methods and the per-request ones under them.
    names = (
        "generate_content",
        "generate_content_stream",
        "embed_content",
        "_generate_content",
        "_generate_content_stream",
    )
    classes = (models.Models, models.AsyncModels)
    originals = {(cls, name): vars(cls)[name] for cls in classes for name in names}
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, providers=["google_genai"])
    try:
        assert all(vars(cls)[name] is not originals[cls, name] for cls, name in originals)
        generate(client, "sync")
    finally:
        instrumentor.uninstrument()
    assert all(vars(cls)[name] is originals[cls, name] for cls, name in originals)
    generate(client, "sync")
    assert len(spans()) == 1


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"), [(429, errors.ClientError), (500, errors.ServerError)]
)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_api_errors_reach_the_caller_unchanged(
    gemini_server, instrument, spans, mode, status, error_class, client
):
    gemini_server.next_error(status, times=5)
    with pytest.raises(errors.APIError) as caught:
        generate(client, mode, customer_id="cust-err")

    error = caught.value
    assert type(error) is error_class
    assert error.code == status
    assert error.__cause__ is None and error.__context__ is None
    [span] = spans()
    assert span.attributes["error.type"] == error_class.__qualname__
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["cmdrdata.customer_id"] == "cust-err"
    assert "gen_ai.usage.input_tokens" not in span.attributes


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_embed_error(gemini_server, instrument, spans, mode, client):
    gemini_server.next_error(400, times=5)
    with pytest.raises(errors.ClientError):
        embed(client, mode, model="gemini-embedding-001")

    [span] = spans()
    assert span.attributes["error.type"] == "ClientError"
    assert span.status.status_code is StatusCode.ERROR


# -- chats ---------------------------------------------------------------------------------


def test_chat_send_message_one_span_per_turn(gemini_server, instrument, spans, client):
    gemini_server.next(usage=GeminiUsage(prompt_token_count=10, candidates_token_count=4))
    gemini_server.next(usage=GeminiUsage(prompt_token_count=20, candidates_token_count=6))
    chat = client.chats.create(model=MODEL)
    chat.send_message("first")
    with customer_context("cust-chat"):
        chat.send_message("second")

    assert len(gemini_server.requests) == 2
    assert len(gemini_server.requests[-1].json["contents"]) == 3  # the history went along
    first, second = spans()
    assert_usage(first, 10, 4)
    assert_usage(second, 20, 6)
    assert second.attributes["cmdrdata.customer_id"] == "cust-chat"
    assert "cmdrdata.customer_id" not in first.attributes


def test_async_chat_send_message(gemini_server, instrument, spans, client):
    gemini_server.next(usage=USAGE)

    async def main():
        chat = client.aio.chats.create(model=MODEL)
        return await chat.send_message("hi")

    assert run(main()).text
    [span] = spans()
    assert span.attributes["gen_ai.request.model"] == MODEL
    assert_usage(span, 100, 65, cache_read=60, reasoning=25)


def get_weather(city: str) -> str:
    """Returns the weather in a city."""
    return f"sunny in {city}"


def function_call_response(prompt: int, candidates: int) -> dict:
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": candidates,
            "totalTokenCount": prompt + candidates,
        },
        "modelVersion": MODEL,
        "responseId": "call-1",
    }


def test_chat_automatic_function_calling_bills_every_request(
    gemini_server, instrument, spans, client
):
    # A chat runs automatic function calling through one generate_content call per model
    # request, so each request is a span with its own usage.
    gemini_server.next_raw(body=function_call_response(30, 5))
    gemini_server.next(usage=GeminiUsage(prompt_token_count=45, candidates_token_count=9))
    chat = client.chats.create(model=MODEL, config=types.GenerateContentConfig(tools=[get_weather]))
    response = chat.send_message("Weather in Oslo?")

    assert response.text == "t0 t1 t2 t3 t4 "
    assert len(gemini_server.requests) == 2
    first, second = spans()
    assert first.attributes["gen_ai.response.id"] == "call-1"
    assert_usage(first, 30, 5)
    assert_usage(second, 45, 9)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_models_automatic_function_calling_bills_every_request(
    gemini_server, instrument, spans, client, mode
):
    # generate_content runs the tool loop itself and returns only the last response;
    # each model request still gets its own span, with its own usage.
    gemini_server.next_raw(body=function_call_response(30, 5))
    gemini_server.next(usage=GeminiUsage(prompt_token_count=45, candidates_token_count=9))
    response = generate(
        client,
        mode,
        contents="Weather in Oslo?",
        config=types.GenerateContentConfig(tools=[get_weather]),
        customer_id="cust-afc",
    )

    assert response.usage_metadata.prompt_token_count == 45  # what the SDK hands back
    assert len(gemini_server.requests) == 2
    first, second = spans()
    assert_usage(first, 30, 5)
    assert_usage(second, 45, 9)
    assert first.attributes["cmdrdata.customer_id"] == "cust-afc"
    assert second.attributes["cmdrdata.customer_id"] == "cust-afc"


def test_llm_call_inside_a_tool_is_billed_on_its_own(gemini_server, instrument, spans, client):
    def lookup(city: str) -> str:
        """Looks a city up with another model call."""
        return client.models.generate_content(model="gemini-2.0-flash", contents=city).text

    gemini_server.next_raw(
        body={
            **function_call_response(30, 5),
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"functionCall": {"name": "lookup", "args": {"city": "Oslo"}}}],
                    },
                    "index": 0,
                }
            ],
        }
    )
    gemini_server.next(usage=GeminiUsage(prompt_token_count=3, candidates_token_count=2))
    gemini_server.next(usage=GeminiUsage(prompt_token_count=45, candidates_token_count=9))
    with customer_context("cust-outer"):
        client.models.generate_content(
            model=MODEL, contents="Tell me", config=types.GenerateContentConfig(tools=[lookup])
        )

    assert len(gemini_server.requests) == 3
    by_model = {}
    for span in spans():
        by_model.setdefault(span.attributes["gen_ai.request.model"], []).append(span)
    [inner] = by_model["gemini-2.0-flash"]
    assert_usage(inner, 3, 2)
    assert inner.attributes["cmdrdata.customer_id"] == "cust-outer"
    assert [s.attributes["gen_ai.usage.input_tokens"] for s in by_model[MODEL]] == [30, 45]


def test_track_usage_false_covers_every_request_of_the_call(
    gemini_server, instrument, spans, client
):
    gemini_server.next_raw(body=function_call_response(30, 5))
    generate(
        client,
        "sync",
        config=types.GenerateContentConfig(tools=[get_weather]),
        track_usage=False,
    )
    assert len(gemini_server.requests) == 2
    assert spans() == []
    generate(client, "sync")  # the next call is tracked again
    assert len(spans()) == 1


# -- metrics -------------------------------------------------------------------------------


def test_token_metrics_equal_span_usage(gemini_server, instrument, spans, metric_reader, client):
    gemini_server.next(usage=USAGE)
    generate(client, "sync")

    points = {}
    for resource_metrics in metric_reader.get_metrics_data().resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == "gen_ai.client.token.usage":
                    for point in metric.data.data_points:
                        points[point.attributes["gen_ai.token.type"]] = point.sum
                        assert point.attributes["gen_ai.provider.name"] == "gcp.gemini"
                        assert "cmdrdata.customer_id" not in point.attributes
    assert points == {"input": 100, "output": 65}
