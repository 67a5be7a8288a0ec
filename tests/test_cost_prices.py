"""SPEC section 12: where a call's price comes from, and that it is exact.

Expected prices are computed here independently: from a hand-written prices file with
``Decimal`` arithmetic, and from the same genai-prices data through its own ``calc_price``.
"""

from __future__ import annotations

import decimal
import json
import logging
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

from cmdrdata_exporter import CmdrDataSpanExporter, span_to_event
from cmdrdata_exporter.config import resolve
from opentelemetry_instrumentation_cmdrdata import pricing, semconv
from tests.span_maker import usage_spans

genai_prices = pytest.importorskip("genai_prices")
BUNDLED = f"genai-prices {genai_prices.__version__}"
MILLION = Decimal(1_000_000)
PLAIN_DECIMAL = r"\d+(\.\d+)?"


@pytest.fixture(scope="module", autouse=True)
def bundled_loaded():
    assert pricing.bundled_prices().wait(60), "genai-prices' bundled data did not load"


def list_price(model: str, provider_id: str, **usage: int) -> Decimal:
    """What genai-prices itself computes for this usage (its keys, its rules)."""
    return genai_prices.calc_price(
        genai_prices.Usage(**usage), model, provider_id=provider_id
    ).total_price


@pytest.mark.parametrize(
    ("provider", "model", "provider_id", "tokens", "usage"),
    [
        (
            "openai",
            "gpt-4o-mini-2024-07-18",
            "openai",
            (1200, 300, 1000, 0, 0),
            {"input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 1000},
        ),
        (
            "openai",
            "o4-mini-2025-04-16",
            "openai",
            (5000, 2000, 1024, 0, 1500),
            {
                "input_tokens": 5000,
                "cache_read_tokens": 1024,
                "output_tokens": 2000,
                "output_reasoning_tokens": 1500,
            },
        ),
        (
            "anthropic",
            "claude-sonnet-4-5-20250929",
            "anthropic",
            (1700, 300, 500, 200, 0),
            {
                "input_tokens": 1700,
                "cache_read_tokens": 500,
                "cache_write_tokens": 200,
                "output_tokens": 300,
            },
        ),
        # Over 200k input tokens: the higher tier applies to every token (a cliff).
        (
            "anthropic",
            "claude-sonnet-4-5-20250929",
            "anthropic",
            (250_000, 1000, 100_000, 0, 0),
            {"input_tokens": 250_000, "cache_read_tokens": 100_000, "output_tokens": 1000},
        ),
        (
            "gcp.gemini",
            "gemini-2.5-flash",
            "google",
            (1000, 250, 400, 0, 50),
            {
                "input_tokens": 1000,
                "cache_read_tokens": 400,
                "output_tokens": 250,
                "output_reasoning_tokens": 50,
            },
        ),
        (
            "gcp.vertex_ai",
            "gemini-2.5-pro",
            "google",
            (300_000, 100, 0, 0, 0),
            {"input_tokens": 300_000, "output_tokens": 100},
        ),
        (
            "openai",
            "text-embedding-3-small",
            "openai",
            (4096, 0, 0, 0, 0),
            {"input_tokens": 4096},
        ),
        (
            "azure.ai.openai",
            "gpt-4o-mini",
            "azure",
            (1000, 100, 0, 0, 0),
            {"input_tokens": 1000, "output_tokens": 100},
        ),
        (
            "aws.bedrock",
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "aws",
            (1000, 100, 0, 0, 0),
            {"input_tokens": 1000, "output_tokens": 100},
        ),
        (
            "mistral_ai",
            "mistral-small-latest",
            "mistral",
            (1000, 100, 0, 0, 0),
            {"input_tokens": 1000, "output_tokens": 100},
        ),
        (
            "openrouter",
            "openai/gpt-4o-mini",
            "openrouter",
            (1000, 100, 0, 0, 0),
            {"input_tokens": 1000, "output_tokens": 100},
        ),
    ],
)
def test_bundled_prices_match_genai_prices_own_calculation(
    provider, model, provider_id, tokens, usage
):
    pricer = pricing.pricer_for(True, None)
    cost = pricer.cost(provider, model, None, tokens)
    assert cost is not None
    assert cost.source == BUNDLED
    assert cost.amount == list_price(model, provider_id, **usage)
    assert cost.usd == float(cost.amount)


def test_unknown_models_and_providers_have_no_price():
    pricer = pricing.pricer_for(True, None)
    assert pricer.cost("openai", "my-own-finetune", None, (10, 10, 0, 0, 0)) is None
    assert pricer.cost("ollama", "llama3.2", None, (10, 10, 0, 0, 0)) is None
    assert pricer.cost(None, "gpt-4o-mini", None, (10, 10, 0, 0, 0)) is None


def test_no_usage_no_price():
    assert (
        pricing.pricer_for(True, None).cost("openai", "gpt-4o-mini", None, (0, 0, 0, 0, 0)) is None
    )


def test_counts_that_contradict_each_other_are_not_priced():
    """More cached tokens than input tokens: a broken span, not a negative price."""
    assert pricing.pricer_for(True, None).cost("openai", "gpt-4o", None, (10, 5, 20, 0, 0)) is None


def test_response_model_is_looked_up_first_then_request_model():
    pricer = pricing.pricer_for(True, None)
    by_request = pricer.cost("openai", "gpt-4o-mini-custom-deploy", "gpt-4o", (1000, 100, 0, 0, 0))
    assert by_request.amount == list_price("gpt-4o", "openai", input_tokens=1000, output_tokens=100)


def test_an_app_wide_genai_prices_snapshot_does_not_change_ours():
    """An app that loads other prices into genai-prices (UpdatePrices) leaves our source alone."""
    from genai_prices import data_snapshot

    expected = list_price("gpt-4o", "openai", input_tokens=1000, output_tokens=100)
    data_snapshot.set_custom_snapshot(data_snapshot.DataSnapshot([], from_auto_update=True))
    try:
        cost = pricing.pricer_for(True, None).cost("openai", "gpt-4o", None, (1000, 100, 0, 0, 0))
    finally:
        data_snapshot.set_custom_snapshot(None)
    assert (cost.amount, cost.source) == (expected, BUNDLED)


# -- CMDRDATA_PRICES_FILE ------------------------------------------------------------------

RATES = {
    "openai": {
        "gpt-4o-mini-2024-07-18": {
            "input": 0.12,
            "output": 0.48,
            "cache_read": 0.06,
            "cache_write": 0.15,
            "reasoning": 0.9,
        },
        "gpt-4o": {"input": 2, "output": 8},
    },
    "anthropic": {"claude-haiku-4-5": {"input": 0.8, "output": 4, "cache_write": 1.0}},
}


@pytest.fixture
def prices_file(tmp_path):
    path = tmp_path / "negotiated.json"
    path.write_text(json.dumps(RATES))
    return path


def test_prices_file_prices_each_kind_of_token_at_its_own_rate(prices_file):
    pricer = pricing.pricer_for(True, str(prices_file))
    cost = pricer.cost(
        "openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini", (1200, 300, 1000, 100, 50)
    )
    # By hand, USD per million tokens: uncached input 100, cache read 1000, cache write 100,
    # reasoning 50, the rest of the output 250.
    expected = (
        100 * Decimal("0.12")
        + 1000 * Decimal("0.06")
        + 100 * Decimal("0.15")
        + 50 * Decimal("0.9")
        + 250 * Decimal("0.48")
    ) / MILLION
    assert cost == pricing.Cost(cost.units, cost.scale, "prices:negotiated.json")
    assert cost.amount == expected
    assert cost.text() == "0.000252"


def test_prices_file_missing_rates_fall_back_to_input_and_output(prices_file):
    pricer = pricing.pricer_for(True, str(prices_file))
    cost = pricer.cost("openai", "gpt-4o", None, (1000, 500, 400, 100, 200))
    assert cost.amount == (1000 * Decimal(2) + 500 * Decimal(8)) / MILLION
    cost = pricer.cost("anthropic", "claude-haiku-4-5", None, (1000, 10, 300, 200, 0))
    assert cost.amount == (800 * Decimal("0.8") + 200 * Decimal("1.0") + 10 * 4) / MILLION


def test_prices_file_beats_bundled_prices_and_falls_through_for_other_models(prices_file):
    pricer = pricing.pricer_for(True, str(prices_file))
    assert pricer.cost("openai", "gpt-4o", None, (1000, 0, 0, 0, 0)).source == (
        "prices:negotiated.json"
    )
    other = pricer.cost("openai", "gpt-4.1-2025-04-14", None, (1000, 100, 0, 0, 0))
    assert other.source == BUNDLED
    assert other.amount == list_price(
        "gpt-4.1-2025-04-14", "openai", input_tokens=1000, output_tokens=100
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "is not valid JSON"),
        ('["openai"]', "must be a JSON object"),
        ('{"openai": {"gpt-4o": {"input": 1}}}', "no output price"),
        ('{"openai": {"gpt-4o": {"input": -1, "output": 1}}}', "input price must be"),
        ('{"openai": {"gpt-4o": {"input": "1", "output": 1}}}', "input price is not a number"),
        ('{"openai": {"gpt-4o": {"input": 1, "output": NaN}}}', "is not valid JSON"),
        ('{"openai": {"gpt-4o": {"input": 1, "output": 1, "cached": 1}}}', "unknown field"),
    ],
)
def test_a_broken_prices_file_is_one_error_line_and_bundled_prices_are_used(
    tmp_path, caplog, content, problem
):
    path = tmp_path / "rates.json"
    path.write_text(content)
    with caplog.at_level(logging.INFO):
        pricer = pricing.pricer_for(True, str(path))
        CmdrDataSpanExporter(disabled=True, prices_file=str(path)).shutdown()
        cost = pricer.cost("openai", "gpt-4o", None, (1000, 100, 0, 0, 0))
    errors = [r for r in caplog.records if "PRICES_FILE" in r.getMessage()]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    assert str(path) in errors[0].getMessage() and problem in errors[0].getMessage()
    assert cost.source == BUNDLED


def test_a_missing_prices_file_is_one_error_line(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        pricing.pricer_for(True, str(tmp_path / "nowhere.json"))
    [error] = caplog.records
    assert "cannot be read" in error.getMessage()


# -- exact money -------------------------------------------------------------------------


def test_amounts_are_plain_decimal_text_never_exponents():
    tiny = pricing.Cost(1, 12, "x")
    assert tiny.text() == "0.000000000001"
    assert pricing.Cost(1_500_000_000, 9, "x").text() == "1.5"
    assert pricing.Cost(250, 0, "x").text() == "250"
    assert pricing.Cost(0, 9, "x").text() == "0"


def test_the_apps_decimal_context_does_not_round_our_prices(prices_file):
    pricer = pricing.pricer_for(True, str(prices_file))
    with decimal.localcontext(decimal.Context(prec=2, rounding=decimal.ROUND_DOWN)):
        cost = pricer.cost("openai", "gpt-4o-mini-2024-07-18", None, (1200, 300, 1000, 100, 50))
        text = cost.text()
    assert text == "0.000252"


def test_provider_reported_cost_keeps_the_providers_digits():
    reported = pricing.reported_cost(pricing.PROVIDER, 0.0001955)
    assert reported.cost().text() == "0.0001955"
    assert Decimal(reported.usd) != Decimal("0.0001955")  # what a float conversion would send
    assert pricing.reported_cost(pricing.PROVIDER, float("nan")) is None
    assert pricing.reported_cost(pricing.PROVIDER, -1.0) is None
    assert pricing.reported_cost(pricing.PROVIDER, "0.1") is None


# -- events --------------------------------------------------------------------------------


def test_event_carries_cost_as_a_decimal_string():
    [span] = usage_spans(**{semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1000})
    event = span_to_event(span, resolve({}, {}))
    metadata = event["metadata"]
    assert isinstance(metadata["cost_usd"], str)
    assert Decimal(metadata["cost_usd"]) == list_price(
        "gpt-4o-mini-2024-07-18",
        "openai",
        input_tokens=1200,
        cache_read_tokens=1000,
        output_tokens=300,
    )
    assert metadata["cost_source"] == BUNDLED


def test_event_without_usage_or_with_unknown_model_has_no_cost_keys():
    settings = resolve({}, {})
    [no_usage] = usage_spans(
        **{semconv.GEN_AI_USAGE_INPUT_TOKENS: None, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: None}
    )
    [unknown] = usage_spans(
        **{
            semconv.GEN_AI_REQUEST_MODEL: "ft:my-model",
            semconv.GEN_AI_RESPONSE_MODEL: "ft:my-model:xyz",
        }
    )
    for span in (no_usage, unknown):
        metadata = span_to_event(span, settings)["metadata"]
        assert "cost_usd" not in metadata and "cost_source" not in metadata


def test_cost_off_leaves_events_without_cost():
    [span] = usage_spans()
    metadata = span_to_event(span, resolve({}, {"CMDRDATA_COST": "false"}))["metadata"]
    assert "cost_usd" not in metadata
    metadata = span_to_event(span, resolve({"cost": False}, {}))["metadata"]
    assert "cost_usd" not in metadata


def test_customer_metadata_never_overrides_the_cost():
    [span] = usage_spans(
        **{"cmdrdata.metadata.cost_usd": "0", "cmdrdata.metadata.cost_source": "me"}
    )
    metadata = span_to_event(span, resolve({}, {}))["metadata"]
    assert metadata["cost_source"] == BUNDLED and Decimal(metadata["cost_usd"]) > 0


def test_a_foreign_genai_span_is_priced_from_its_own_attribute_names():
    """genai mode: an OpenLLMetry-style span (gen_ai.system, old token names) is priced too."""
    [span] = usage_spans(
        scope="opentelemetry.instrumentation.google_generativeai",
        **{
            semconv.GEN_AI_PROVIDER_NAME: None,
            semconv.GEN_AI_SYSTEM: "gemini",
            semconv.GEN_AI_REQUEST_MODEL: "gemini-2.5-flash",
            semconv.GEN_AI_RESPONSE_MODEL: None,
            semconv.GEN_AI_USAGE_INPUT_TOKENS: None,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: None,
            "gen_ai.usage.prompt_tokens": 800,
            "gen_ai.usage.completion_tokens": 120,
        },
    )
    metadata = span_to_event(span, resolve({"span_source": "genai"}, {}))["metadata"]
    assert Decimal(metadata["cost_usd"]) == list_price(
        "gemini-2.5-flash", "google", input_tokens=800, output_tokens=120
    )


def test_a_provider_cost_on_the_span_reaches_the_event_digit_for_digit():
    [span] = usage_spans(
        **{
            semconv.GEN_AI_PROVIDER_NAME: "openrouter",
            semconv.CMDRDATA_COST_USD: 0.0001955,
            semconv.CMDRDATA_COST_SOURCE: "provider",
        }
    )
    metadata = span_to_event(span, resolve({}, {}))["metadata"]
    assert (metadata["cost_usd"], metadata["cost_source"]) == ("0.0001955", "provider")


# -- never the network -------------------------------------------------------------------


def test_bundled_prices_load_and_price_without_any_network_access():
    """A fresh process that loads and uses the prices opens no socket and starts no updater."""
    script = textwrap.dedent(
        """
        import sys
        connects = []
        sys.addaudithook(
            lambda event, args: connects.append(args) if event == "socket.connect" else None
        )
        from opentelemetry_instrumentation_cmdrdata import pricing
        assert pricing.bundled_prices().wait(60)
        cost = pricing.pricer_for(True, None).cost("openai", "gpt-4o", None, (10, 10, 0, 0, 0))
        assert cost is not None
        from genai_prices import update_prices
        assert update_prices._shared_updater.thread is None
        print(len(connects))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "0"


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_a_process_forked_while_prices_load_still_gets_them(delay):
    """gunicorn --preload and friends: a fork during the background load must not leave the
    child without list prices (or with genai-prices half imported)."""
    script = textwrap.dedent(
        f"""
        import os, time
        from opentelemetry_instrumentation_cmdrdata import pricing
        pricer = pricing.pricer_for(True, None)  # starts the background load
        time.sleep({delay})
        pid = os.fork()
        if pid == 0:
            loaded = pricing.bundled_prices().wait(60)
            cost = pricer.cost("openai", "gpt-4o", None, (1000, 100, 0, 0, 0))
            os._exit(0 if loaded and cost is not None else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "0", out.stderr


def test_instrument_alone_loads_no_prices():
    """The bundled data costs most of a second of CPU: a process pays for it only once a call
    asks for a price, not for instrument() (a worker that never calls an LLM never loads it)."""
    script = textwrap.dedent(
        """
        import sys
        import threading
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor, pricing
        CmdrDataInstrumentor().instrument(tracer_provider=TracerProvider())
        loading = [t.name for t in threading.enumerate() if t.name == "cmdrdata-prices"]
        print(loading, "genai_prices" in sys.modules)
        cost = pricing.pricer_for(True, None).cost("openai", "gpt-4o", None, (10, 10, 0, 0, 0))
        assert cost is None  # not loaded yet: the app's thread never waits
        assert pricing.bundled_prices().wait(60)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[] False"
