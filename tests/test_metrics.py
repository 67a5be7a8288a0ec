"""GenAI metrics (SPEC §8): token usage and duration histograms, never the customer."""

from __future__ import annotations

import openai
import pytest

from tests.servers.openai_server import OpenAIUsage

MESSAGES = [{"role": "user", "content": "hi"}]


def _points(reader, name):
    data = reader.get_metrics_data()
    found = []
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    found.append((metric, list(metric.data.data_points)))
    return found


def _token_points(reader):
    [(metric, points)] = _points(reader, "gen_ai.client.token.usage")
    assert metric.unit == "{token}"
    return {point.attributes["gen_ai.token.type"]: point for point in points}


def test_token_usage_and_duration_with_semconv_attributes(
    openai_server, make_openai_client, instrument, metric_reader
):
    openai_server.configure(usage=OpenAIUsage(prompt_tokens=120, completion_tokens=30))
    with_customer = {"customer_id": "cust-secret", "cmdrdata_metadata": {"plan": "pro"}}
    make_openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, **with_customer
    )

    tokens = _token_points(metric_reader)
    assert tokens["input"].sum == 120 and tokens["input"].count == 1
    assert tokens["output"].sum == 30
    attributes = dict(tokens["input"].attributes)
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "server.address": "127.0.0.1",
        "server.port": openai_server.port,
        "gen_ai.token.type": "input",
    }
    assert tuple(tokens["input"].explicit_bounds)[:3] == (1, 4, 16)

    [(metric, [duration])] = _points(metric_reader, "gen_ai.client.operation.duration")
    assert metric.unit == "s"
    assert duration.count == 1 and duration.sum > 0
    assert tuple(duration.explicit_bounds)[:2] == (0.01, 0.02)
    assert "error.type" not in duration.attributes


def test_customer_never_on_metrics(openai_server, make_openai_client, instrument, metric_reader):
    from opentelemetry_instrumentation_cmdrdata import customer_context

    with customer_context("cust-42", plan="pro"):
        make_openai_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    for name in ("gen_ai.client.token.usage", "gen_ai.client.operation.duration"):
        for _, points in _points(metric_reader, name):
            for point in points:
                assert not any(key.startswith("cmdrdata") for key in point.attributes)
                assert "cust-42" not in point.attributes.values()


def test_stream_records_at_its_end(openai_server, make_openai_client, instrument, metric_reader):
    openai_server.configure(usage=OpenAIUsage(prompt_tokens=11, completion_tokens=22), chunks=5)
    stream = make_openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    next(iter(stream))
    assert _points(metric_reader, "gen_ai.client.operation.duration") == []
    for _ in stream:
        pass
    tokens = _token_points(metric_reader)
    assert tokens["input"].sum == 11 and tokens["output"].sum == 22


def test_embeddings_record_input_tokens_only(
    openai_server, make_openai_client, instrument, metric_reader
):
    openai_server.configure(usage=OpenAIUsage(prompt_tokens=9))
    make_openai_client().embeddings.create(model="text-embedding-3-small", input="a")
    tokens = _token_points(metric_reader)
    assert set(tokens) == {"input"} and tokens["input"].sum == 9


def test_failed_call_records_duration_with_error_type(
    openai_server, make_openai_client, instrument, metric_reader
):
    openai_server.next_error(429)
    with pytest.raises(openai.RateLimitError):
        make_openai_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    [(_, [duration])] = _points(metric_reader, "gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "RateLimitError"
    assert _points(metric_reader, "gen_ai.client.token.usage") == []


def test_global_meter_provider_set_after_instrument_gets_the_points(tmp_path, openai_server):
    """No MeterProvider at instrument(): calls record nothing; once one is set, they do.

    In a subprocess: the global MeterProvider can be set once per process.
    """
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import openai
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor

        CmdrDataInstrumentor().instrument()
        client = openai.OpenAI(api_key="sk-test", base_url="{openai_server.url}", max_retries=0)
        ask = dict(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
        client.chat.completions.create(**ask)  # nowhere to record yet
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        client.chat.completions.create(**ask)
        names = {{
            (m.name, sum(p.count for p in m.data.data_points))
            for rm in reader.get_metrics_data().resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        }}
        print(sorted(names))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "[('gen_ai.client.operation.duration', 1), ('gen_ai.client.token.usage', 2)]"
    )
