"""SPEC section 12 through every instrumented SDK: real calls to the local fake servers, the
span's ``cmdrdata.cost.usd`` and the event's ``cost_usd`` / ``cost_source``.

Expected prices come from genai-prices' own ``calc_price`` on the usage the server sent, or by
hand from the prices file written here.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cmdrdata_exporter import span_to_event
from cmdrdata_exporter.config import resolve
from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor, pricing
from opentelemetry_instrumentation_cmdrdata import semconv as sc
from tests.conftest import our_spans
from tests.servers.anthropic_server import AnthropicUsage
from tests.servers.gemini_server import GeminiUsage
from tests.servers.openai_server import OpenAIUsage

genai_prices = pytest.importorskip("genai_prices")
BUNDLED = f"genai-prices {genai_prices.__version__}"
HTTP = getattr(openai._base_client, "httpx2", None) or openai._base_client.httpx
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module", autouse=True)
def bundled_loaded():
    assert pricing.bundled_prices().wait(60), "genai-prices' bundled data did not load"


def list_price(model: str, provider_id: str, **usage: int) -> Decimal:
    return genai_prices.calc_price(
        genai_prices.Usage(**usage), model, provider_id=provider_id
    ).total_price


def priced(span, settings=None) -> tuple[Decimal, str]:
    """The event's cost of a finished span, after checking the span agrees with it."""
    metadata = span_to_event(span, settings or resolve({}, {}))["metadata"]
    text = metadata["cost_usd"]
    assert isinstance(text, str) and re.fullmatch(r"\d+(\.\d+)?", text)
    assert span.attributes[sc.CMDRDATA_COST_USD] == float(Decimal(text))
    assert span.attributes[sc.CMDRDATA_COST_SOURCE] == metadata["cost_source"]
    return Decimal(text), metadata["cost_source"]


def test_openai_chat_with_cached_and_reasoning_tokens(instrument, openai_server, spans):
    openai_server.next(
        usage=OpenAIUsage(
            prompt_tokens=5000, completion_tokens=2000, cached_tokens=1024, reasoning_tokens=1500
        )
    )
    openai_server.client().chat.completions.create(model="o4-mini", messages=MESSAGES)
    [span] = spans()
    assert priced(span) == (
        list_price(
            "o4-mini-2025-04-16",
            "openai",
            input_tokens=5000,
            cache_read_tokens=1024,
            output_tokens=2000,
            output_reasoning_tokens=1500,
        ),
        BUNDLED,
    )


async def test_openai_async_stream_is_priced_from_its_usage_chunk(instrument, openai_server, spans):
    openai_server.next(usage=OpenAIUsage(prompt_tokens=300, completion_tokens=90))
    stream = await openai_server.async_client().chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    async for _ in stream:
        pass
    [span] = spans()
    assert priced(span)[0] == list_price(
        "gpt-4o-mini-2024-07-18", "openai", input_tokens=300, output_tokens=90
    )


def test_openai_responses_and_embeddings(instrument, openai_server, spans):
    client = openai_server.client()
    openai_server.next(usage=OpenAIUsage(prompt_tokens=700, completion_tokens=60))
    client.responses.create(model="gpt-4.1", input="hi")
    openai_server.next(usage=OpenAIUsage(prompt_tokens=4096))
    client.embeddings.create(model="text-embedding-3-small", input="hi")
    responses, embeddings = spans()
    assert priced(responses)[0] == list_price(
        "gpt-4.1-2025-04-14", "openai", input_tokens=700, output_tokens=60
    )
    assert priced(embeddings)[0] == list_price(
        "text-embedding-3-small", "openai", input_tokens=4096
    )


def test_anthropic_cache_reads_and_writes_at_their_own_prices(instrument, anthropic_server, spans):
    anthropic_server.next(
        usage=AnthropicUsage(
            input_tokens=1000,
            output_tokens=300,
            cache_read_input_tokens=500,
            cache_creation_input_tokens=200,
            ephemeral_5m_input_tokens=200,
        )
    )
    anthropic_server.client().messages.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES
    )
    [span] = spans()
    assert priced(span) == (
        list_price(
            "claude-sonnet-4-5-20250929",
            "anthropic",
            input_tokens=1700,
            cache_read_tokens=500,
            cache_write_tokens=200,
            output_tokens=300,
        ),
        BUNDLED,
    )


def test_anthropic_stream(instrument, anthropic_server, spans):
    anthropic_server.next(usage=AnthropicUsage(input_tokens=40, output_tokens=25))
    with anthropic_server.client().messages.stream(
        model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES
    ) as stream:
        stream.until_done()
    [span] = spans()
    assert priced(span)[0] == list_price(
        "claude-haiku-4-5-20251001", "anthropic", input_tokens=40, output_tokens=25
    )


def test_gemini_cached_and_thinking_tokens(instrument, gemini_server, spans):
    gemini_server.next(
        usage=GeminiUsage(
            prompt_token_count=1000,
            candidates_token_count=200,
            cached_content_token_count=400,
            thoughts_token_count=50,
        )
    )
    client = gemini_server.client()
    client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    [span] = spans()
    assert priced(span) == (
        list_price(
            "gemini-2.5-flash",
            "google",
            input_tokens=1000,
            cache_read_tokens=400,
            output_tokens=250,
            output_reasoning_tokens=50,
        ),
        BUNDLED,
    )


def test_vertex_ai_over_the_long_context_tier(instrument, gemini_server, spans):
    gemini_server.next(usage=GeminiUsage(prompt_token_count=250_000, candidates_token_count=100))
    client = gemini_server.vertex_client()
    for _ in client.models.generate_content_stream(model="gemini-2.5-pro", contents="hi"):
        pass
    [span] = spans()
    assert span.attributes[sc.GEN_AI_PROVIDER_NAME] == "gcp.vertex_ai"
    assert priced(span)[0] == list_price(
        "gemini-2.5-pro", "google", input_tokens=250_000, output_tokens=100
    )


# -- OpenRouter: what the provider says it charged --------------------------------------


class _ToFakeServer(HTTP.HTTPTransport):
    """Sends requests meant for openrouter.ai to the local fake server (real HTTP)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._target = HTTP.URL(url)

    def handle_request(self, request):
        target = self._target
        request.url = request.url.copy_with(
            scheme=target.scheme, host=target.host, port=target.port
        )
        return super().handle_request(request)


@pytest.fixture
def openrouter(openai_server):
    return openai.OpenAI(
        base_url="https://openrouter.ai/api/v1",
        api_key="sk-or-test",
        max_retries=0,
        http_client=HTTP.Client(transport=_ToFakeServer(openai_server.url)),
    )


def test_openrouter_reported_cost_wins_and_keeps_its_digits(
    instrument, openai_server, openrouter, spans
):
    openai_server.next(
        model="openai/gpt-4o-mini",
        usage=OpenAIUsage(prompt_tokens=1000, completion_tokens=100, cost=0.0001955),
    )
    openrouter.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    [span] = spans()
    assert span.attributes[sc.GEN_AI_PROVIDER_NAME] == "openrouter"
    assert span.attributes[sc.CMDRDATA_COST_USD] == 0.0001955
    metadata = span_to_event(span, resolve({}, {}))["metadata"]
    assert (metadata["cost_usd"], metadata["cost_source"]) == ("0.0001955", "provider")
    # The list price differs: the test tells the two sources apart.
    assert list_price(
        "openai/gpt-4o-mini", "openrouter", input_tokens=1000, output_tokens=100
    ) != Decimal("0.0001955")


def test_openrouter_stream_reports_its_cost_in_the_usage_chunk(
    instrument, openai_server, openrouter, spans
):
    openai_server.next(
        model="anthropic/claude-haiku-4.5",
        usage=OpenAIUsage(prompt_tokens=20, completion_tokens=5, cost=0.000045),
    )
    for _ in openrouter.chat.completions.create(
        model="anthropic/claude-haiku-4.5", messages=MESSAGES, stream=True
    ):
        pass
    [span] = spans()
    assert priced(span) == (Decimal("0.000045"), "provider")


def test_openrouter_without_a_reported_cost_gets_its_list_price(
    instrument, openai_server, openrouter, spans
):
    openai_server.next(
        model="openai/gpt-4o-mini", usage=OpenAIUsage(prompt_tokens=1000, completion_tokens=100)
    )
    openrouter.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES)
    [span] = spans()
    assert priced(span) == (
        list_price("openai/gpt-4o-mini", "openrouter", input_tokens=1000, output_tokens=100),
        BUNDLED,
    )


def test_a_cost_field_from_another_openai_compatible_server_is_not_trusted(
    instrument, openai_server, spans
):
    """Only providers known to report USD charges are taken at their word."""
    openai_server.next(usage=OpenAIUsage(prompt_tokens=1000, completion_tokens=100, cost=42.0))
    openai_server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    [span] = spans()
    assert priced(span)[1] == BUNDLED


# -- configuration ---------------------------------------------------------------------


@pytest.fixture
def instrument_with_env(monkeypatch, tracer_provider, span_exporter):
    """Instrument after setting CMDRDATA_* variables, as an app's environment would."""
    instrumentors = []

    def start(**env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        instrumentor = CmdrDataInstrumentor()
        instrumentor.instrument(tracer_provider=tracer_provider)
        instrumentors.append(instrumentor)
        return lambda: our_spans(span_exporter)

    yield start
    for instrumentor in instrumentors:
        instrumentor.uninstrument()


def test_negotiated_rates_from_the_prices_file_reach_span_and_event(
    instrument_with_env, tmp_path, anthropic_server
):
    path = tmp_path / "acme-rates.json"
    path.write_text(
        json.dumps({"anthropic": {"claude-sonnet-4-5-20250929": {"input": 2.4, "output": 12}}})
    )
    spans = instrument_with_env(CMDRDATA_PRICES_FILE=str(path))
    anthropic_server.next(
        usage=AnthropicUsage(input_tokens=1000, output_tokens=300, cache_read_input_tokens=500)
    )
    anthropic_server.client().messages.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES
    )
    [span] = spans()
    # No cache_read rate in the file: cached input is priced as input.
    expected = (1500 * Decimal("2.4") + 300 * Decimal(12)) / 1_000_000
    assert priced(span, resolve({}, {"CMDRDATA_PRICES_FILE": str(path)})) == (
        expected,
        "prices:acme-rates.json",
    )


def test_cost_false_turns_it_off_on_the_span(instrument_with_env, openai_server):
    spans = instrument_with_env(CMDRDATA_COST="false")
    openai_server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    [span] = spans()
    assert sc.CMDRDATA_COST_USD not in span.attributes
    assert sc.CMDRDATA_COST_SOURCE not in span.attributes


def test_unknown_model_is_no_cost_and_no_log(instrument, openai_server, spans, caplog):
    openai_server.client().chat.completions.create(model="acme-internal-7b", messages=MESSAGES)
    [span] = spans()
    assert sc.CMDRDATA_COST_USD not in span.attributes
    assert "cost_usd" not in span_to_event(span, resolve({}, {}))["metadata"]
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


def test_cost_is_never_a_metric_attribute(instrument, openai_server, metric_reader, spans):
    openai_server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    [span] = spans()
    assert sc.CMDRDATA_COST_USD in span.attributes
    data = metric_reader.get_metrics_data()
    names = {
        key
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
        for key in point.attributes
    }
    assert names and not any(name.startswith("cmdrdata.cost") for name in names)


def test_a_sampled_out_call_is_priced_for_billing(openai_server, cmdrdata_server, tmp_path):
    """A call whose span the sampler dropped is billed with its cost like any other."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from cmdrdata_exporter import CmdrDataSpanExporter
    from tests.servers.cmdrdata_server import TEST_API_KEY

    exporter = CmdrDataSpanExporter(
        api_key=TEST_API_KEY, endpoint=cmdrdata_server.url, spool_dir=str(tmp_path), timeout=2
    )
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        openai_server.next(usage=OpenAIUsage(prompt_tokens=100, completion_tokens=10))
        openai_server.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        provider.force_flush()
        assert cmdrdata_server.wait_for(1, timeout=10)
    finally:
        instrumentor.uninstrument()
        exporter.shutdown()
    [event] = cmdrdata_server.events
    assert event["metadata"]["cost_source"] == BUNDLED
    assert Decimal(event["metadata"]["cost_usd"]) == list_price(
        "gpt-4o-mini-2024-07-18", "openai", input_tokens=100, output_tokens=10
    )
