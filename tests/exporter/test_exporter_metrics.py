"""SPEC section 13: the exporter's own metrics, through an outage, refusals and the recovery."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tests.exporter.cli_run import ROOT, run_cli
from tests.servers.cmdrdata_server import EVENTS_PATH, TEST_API_KEY

QUEUED = "cmdrdata.exporter.events.queued"
DELIVERED = "cmdrdata.exporter.events.delivered"
REJECTED = "cmdrdata.exporter.events.rejected"
DROPPED = "cmdrdata.exporter.events.dropped"
DURATION = "cmdrdata.exporter.delivery.duration"
PAUSED = "cmdrdata.exporter.paused"
ALLOWED_ATTRIBUTES = {"reason", "http.response.status_code"}


def _read(reader: InMemoryMetricReader) -> dict[tuple[str, tuple], Any]:
    """{(metric name, sorted attributes): value}; a histogram's value is its point."""
    seen: dict[tuple[str, tuple], Any] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            assert scope_metrics.scope.name == "cmdrdata_exporter"
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    assert set(attributes) <= ALLOWED_ATTRIBUTES, (metric.name, attributes)
                    key = (metric.name, tuple(sorted(attributes.items())))
                    seen[key] = point if metric.name == DURATION else point.value
    return seen


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


def test_metrics_through_an_outage_refusals_a_rejection_and_the_recovery(
    make_exporter, make_spans, cmdrdata_server, reader
):
    exporter = make_exporter(meter_provider=MeterProvider(metric_readers=[reader]))
    m = _read(reader)
    assert (m[(QUEUED, ())], m[(PAUSED, ())]) == (0, 0)

    # cmdrdata down (503): the queue grows, delivery is not "paused" (it backs off)
    cmdrdata_server.set_mode(fail_next=10**6, fail_status=503)
    exporter.export(make_spans(4, **{"cmdrdata.customer_id": "cust-secret"}))
    _wait(lambda: any(r.status == 503 for r in cmdrdata_server.requests))
    down = time.monotonic()
    time.sleep(0.3)
    m = _read(reader)
    assert (m[(QUEUED, ())], m[(PAUSED, ())]) == (4, 0)
    assert (DELIVERED, ()) not in m
    cmdrdata_server.set_mode(fail_next=0)
    outage = time.monotonic() - down
    assert cmdrdata_server.wait_for(4, 10)
    _wait(lambda: _read(reader).get((QUEUED, ())) == 0)
    m = _read(reader)
    assert m[(DELIVERED, ())] == 4
    duration = m[(DURATION, ())]
    assert duration.count == 4 and duration.max >= outage  # from the call's end, not the send

    # the key refused (401): paused, reason auth, events wait
    cmdrdata_server.set_mode(unauthorized=True)
    exporter.export(make_spans(3))
    _wait(lambda: _read(reader).get((PAUSED, (("reason", "auth"),))) == 1)
    assert _read(reader)[(QUEUED, ())] == 3
    cmdrdata_server.set_mode(unauthorized=False)
    assert cmdrdata_server.wait_for(7, 10)
    _wait(lambda: _read(reader).get((PAUSED, ())) == 0)
    assert _read(reader)[(DELIVERED, ())] == 7

    # the endpoint is wrong (404): paused, reason endpoint
    cmdrdata_server.set_mode(path="/api/v0/events")
    exporter.export(make_spans(2))
    _wait(lambda: _read(reader).get((PAUSED, (("reason", "endpoint"),))) == 1)
    assert _read(reader)[(QUEUED, ())] == 2
    cmdrdata_server.set_mode(path=EVENTS_PATH)
    assert cmdrdata_server.wait_for(9, 10)
    _wait(lambda: _read(reader).get((PAUSED, ())) == 0)
    m = _read(reader)
    assert (m[(DELIVERED, ())], m[(QUEUED, ())], m[(DURATION, ())].count) == (9, 0, 9)

    # events refused one by one (422)
    cmdrdata_server.set_mode(reject=lambda event: True)
    exporter.export(make_spans(2))
    _wait(lambda: _read(reader).get((REJECTED, (("http.response.status_code", 422),))) == 2)
    assert _read(reader)[(DELIVERED, ())] == 9

    # lost: spans exported after shutdown
    exporter.shutdown()
    exporter.export(make_spans(1))
    m = _read(reader)
    assert m[(DROPPED, (("reason", "export_after_shutdown"),))] == 1
    assert (QUEUED, ()) not in m  # a shut-down exporter reports no queue
    values = [str(k) for k in m]
    assert not any("cust-secret" in v or TEST_API_KEY in v or EVENTS_PATH in v for v in values)


@pytest.mark.parametrize(
    ("spool", "reason"), [("sqlite", "spool_cap"), ("memory", "memory_queue_full")]
)
def test_a_full_spool_counts_dropped_events(
    make_exporter, make_spans, cmdrdata_server, reader, spool, reason
):
    cmdrdata_server.stop()
    exporter = make_exporter(
        meter_provider=MeterProvider(metric_readers=[reader]), spool=spool, max_spool_events=3
    )
    exporter.export(make_spans(5))
    m = _read(reader)
    assert m[(DROPPED, (("reason", reason),))] == 2 and m[(QUEUED, ())] == 3


@pytest.mark.parametrize("provider_set", ["after", "before"])
def test_the_global_meter_provider_is_used(cmdrdata_server, tmp_path, provider_set):
    """ "after": as under opentelemetry-instrument, whose distro sets it after tracing."""
    create = f"""
        exporter = CmdrDataSpanExporter(
            api_key={TEST_API_KEY!r}, endpoint={cmdrdata_server.url!r},
            spool_dir={str(tmp_path)!r},
        )"""
    set_provider = """
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))"""
    steps = (create, set_provider) if provider_set == "after" else (set_provider, create)
    script = textwrap.dedent(
        f"""
        import json
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from cmdrdata_exporter import CmdrDataSpanExporter
        from tests.span_maker import usage_spans
        {steps[0]}
        {steps[1]}
        exporter.export(usage_spans(3))
        assert exporter.force_flush(10_000)
        seen = {{}}
        for rm in reader.get_metrics_data().resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        seen[metric.name] = getattr(point, "count", None) or point.value
        print(json.dumps(seen))
        exporter.shutdown()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen[DELIVERED] == 3 and seen[DURATION] == 3 and seen[QUEUED] == 0


def test_status_json_for_health_checks(make_exporter, make_spans, cmdrdata_server, spool_dir):
    right, wrong = cmdrdata_server.url, cmdrdata_server.url_for("/api/event")
    exporter = make_exporter(endpoint=wrong)
    exporter.export(make_spans(3))
    _wait(lambda: exporter.status()["paused_by"] == "endpoint")
    exporter.shutdown()

    paused = run_cli("status", "--json", endpoint=wrong, spool_dir=spool_dir)
    assert paused.returncode == 1 and "paused" in paused.stderr
    info = json.loads(paused.stdout)
    assert (info["queued"], info["delivered"], info["rejected"]) == (3, 0, 0)
    assert info["paused"] == "endpoint" and info["oldest_queued_age_s"] >= 0
    assert info["endpoint"] == wrong and "HTTP 404" in info["last_error"]

    # not paused in this environment's view once the fixed endpoint delivered something
    time.sleep(0.2)
    young = run_cli("status", "--json", "--max-age", "0.1", endpoint=right, spool_dir=spool_dir)
    assert young.returncode == 1 and "--max-age 0.1" in young.stderr
    assert run_cli("flush", endpoint=right, spool_dir=spool_dir).returncode == 0

    healthy = run_cli("status", "--json", "--max-age", "60", endpoint=right, spool_dir=spool_dir)
    assert healthy.returncode == 0, healthy.stderr
    info = json.loads(healthy.stdout)
    assert (info["queued"], info["delivered"], info["paused"]) == (0, 3, None)
    assert info["oldest_queued_age_s"] is None and info["last_error_cleared"] is True
