"""SPEC section 5: a wrong endpoint (404/405/410/3xx) pauses delivery; it never destroys events."""

from __future__ import annotations

import json
import logging
import time

import pytest

from tests.exporter.cli_run import error_lines, run_cli

TYPO = "/api/event"  # the real path is /api/events


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_typo_in_the_path_pauses_and_the_events_go_out_once_fixed(
    make_exporter, make_spans, cmdrdata_server, caplog
):
    caplog.set_level(logging.INFO, logger="cmdrdata_exporter")
    wrong = cmdrdata_server.url_for(TYPO)
    exporter = make_exporter(endpoint=wrong)
    exporter.export(make_spans(10))
    assert _wait(lambda: any(r.status == 404 for r in cmdrdata_server.requests))
    time.sleep(0.6)  # several pause periods of the test timers (0.2 s, doubling)
    status = exporter.status()
    assert (status["queued"], status["rejected"]) == (10, 0)
    assert status["paused"] and "404" in status["paused"]
    (error,) = _errors(caplog)
    assert "HTTP 404" in error and wrong in error
    assert len(cmdrdata_server.requests) < 20  # paused: a few probes, not a storm

    cmdrdata_server.set_mode(path=TYPO)  # the server now serves what the exporter asks for
    assert cmdrdata_server.wait_for(10, 10)
    assert _wait(lambda: exporter.status()["queued"] == 0)
    status = exporter.status()
    assert (status["delivered"], status["rejected"], status["paused"]) == (10, 0, None)
    assert any("resumed" in r.getMessage() for r in caplog.records)
    assert len(_errors(caplog)) == 1


@pytest.mark.parametrize("code", [404, 405, 410, 301, 302, 307, 308])
def test_endpoint_statuses_keep_events_queued(make_exporter, make_spans, cmdrdata_server, code):
    cmdrdata_server.set_mode(fail_next=2, fail_status=code)
    exporter = make_exporter(concurrency=1)
    exporter.export(make_spans(6))
    assert cmdrdata_server.wait_for(6, 10), exporter.status()
    assert _wait(lambda: exporter.status()["queued"] == 0)
    status = exporter.status()
    assert (status["delivered"], status["rejected"]) == (6, 0)
    assert cmdrdata_server.duplicates == 0
    assert [r.status for r in cmdrdata_server.requests][:2] == [code, code]


def test_a_paused_exporter_tries_again_on_force_flush(make_exporter, make_spans, cmdrdata_server):
    cmdrdata_server.set_mode(unauthorized=True)
    exporter = make_exporter(_auth_retry=3600)  # the timer alone would wait an hour
    exporter.export(make_spans(4))
    assert _wait(lambda: exporter.status()["paused"] is not None)
    cmdrdata_server.set_mode(unauthorized=False)
    assert exporter.force_flush(5000) is True
    assert len(cmdrdata_server.event_ids()) == 4


def test_cli_wrong_endpoint_then_fixed(make_exporter, make_spans, cmdrdata_server, spool_dir):
    cmdrdata_server.stop()
    exporter = make_exporter()
    exporter.export(make_spans(7))
    exporter.shutdown(timeout_millis=200)
    cmdrdata_server.start()
    wrong, right = cmdrdata_server.url_for(TYPO), cmdrdata_server.url

    flushed = run_cli("flush", endpoint=wrong, spool_dir=spool_dir)
    assert flushed.returncode == 1
    assert "still queued 7" in flushed.stdout and "rejected 0" in flushed.stdout
    (error,) = error_lines(flushed.stderr)
    assert "HTTP 404" in error and wrong in error

    status = run_cli("status", endpoint=wrong, spool_dir=spool_dir)
    assert status.returncode == 0 and "delivery is paused" in status.stderr  # a report
    assert "paused     the endpoint" in status.stdout
    health = run_cli("status", "--json", endpoint=wrong, spool_dir=spool_dir)
    assert health.returncode == 1 and json.loads(health.stdout)["paused"] == "endpoint"
    assert "queued     7" in status.stdout and "rejected   0" in status.stdout
    assert f"endpoint   {wrong}" in status.stdout
    assert "HTTP 404" in status.stdout and "cleared" not in status.stdout

    fixed = run_cli("flush", endpoint=right, spool_dir=spool_dir)
    assert fixed.returncode == 0, fixed.stderr
    assert "delivered 7, rejected 0, still queued 0" in fixed.stdout
    assert len(set(cmdrdata_server.event_ids())) == 7

    status = run_cli("status", endpoint=right, spool_dir=spool_dir)
    assert f"endpoint   {right}" in status.stdout
    (last,) = [line for line in status.stdout.splitlines() if line.startswith("last error")]
    assert "HTTP 404" in last and "cleared" in last


def test_cli_requeue_puts_rejected_events_back(
    make_exporter, make_spans, cmdrdata_server, spool_dir
):
    cmdrdata_server.set_mode(reject=lambda e: e["customer_id"] == "bad")
    exporter = make_exporter()
    exporter.export(make_spans(3, **{"cmdrdata.customer_id": "bad"}) + make_spans(2))
    assert exporter.force_flush(5000) is True
    exporter.shutdown()
    url = cmdrdata_server.url

    none = run_cli("requeue", "--status", "400", endpoint=url, spool_dir=spool_dir)
    assert none.returncode == 0 and "requeued 0" in none.stdout

    status = run_cli("status", endpoint=url, spool_dir=spool_dir)
    assert "rejected   3" in status.stdout and status.stdout.count("HTTP 422") == 3

    cmdrdata_server.set_mode(reject=None)  # the server was fixed
    back = run_cli("requeue", "--status", "422", endpoint=url, spool_dir=spool_dir)
    assert back.returncode == 0, back.stderr
    assert "requeued 3" in back.stdout

    status = run_cli("status", endpoint=url, spool_dir=spool_dir)
    assert "queued     3" in status.stdout and "rejected   0" in status.stdout
    flushed = run_cli("flush", endpoint=url, spool_dir=spool_dir)
    assert "delivered 3, rejected 0, still queued 0" in flushed.stdout
    assert len(set(cmdrdata_server.event_ids())) == 5 and cmdrdata_server.duplicates == 0


def test_classify_follows_the_spec_table():
    from cmdrdata_exporter.sender import classify

    table = {
        "delivered": [200, 201, 202, 204],
        "retry": [408, 429, 500, 502, 503, 504],
        "auth": [401, 403],
        "endpoint": [404, 405, 410, 300, 301, 302, 303, 307, 308],
        "rejected": [400, 409, 413, 415, 422],
    }
    assert {kind: [classify(s) for s in codes] for kind, codes in table.items()} == {
        kind: [kind] * len(codes) for kind, codes in table.items()
    }
