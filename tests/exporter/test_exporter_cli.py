"""``cmdrdata-exporter status | flush | check`` (``requeue``: test_wrong_endpoint.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cmdrdata_exporter.cli import main
from tests.exporter.cli_run import run_cli
from tests.servers.cmdrdata_server import TEST_API_KEY


@pytest.fixture
def env(monkeypatch, spool_dir, cmdrdata_server):
    monkeypatch.setenv("CMDRDATA_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("CMDRDATA_ENDPOINT", cmdrdata_server.url)
    monkeypatch.setenv("CMDRDATA_SPOOL_DIR", str(spool_dir))
    monkeypatch.setenv("CMDRDATA_TIMEOUT", "1")


@pytest.fixture
def backlog(env, make_exporter, make_spans, cmdrdata_server):
    """250 events queued while cmdrdata was down, 2 of them rejected later."""
    cmdrdata_server.stop()
    exporter = make_exporter()
    exporter.export(make_spans(248) + make_spans(2, **{"cmdrdata.customer_id": "bad"}))
    deadline = time.monotonic() + 10
    while not exporter.status()["last_error"] and time.monotonic() < deadline:
        time.sleep(0.02)  # the sender has tried and failed once
    exporter.shutdown(timeout_millis=2000)
    cmdrdata_server.start()
    cmdrdata_server.set_mode(reject=lambda e: e["customer_id"] == "bad")
    return 250


def test_status_flush_status(backlog, capsys, cmdrdata_server):
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "queued     250" in out and "delivered  0" in out and "rejected   0" in out
    assert "ConnectError" in out and "spool.sqlite3" in out

    assert main(["flush"]) == 1  # two were rejected: not everything was delivered
    captured = capsys.readouterr()
    assert "delivered 248, rejected 2, still queued 0" in captured.out
    assert "250/250" in captured.err  # the progress bar
    assert len(set(cmdrdata_server.event_ids())) == 248

    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "queued     0" in out and "delivered  248" in out and "rejected   2" in out
    assert out.count("HTTP 422") == 2 and "rejected by test" in out

    assert main(["status", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["queued"], info["delivered"], info["rejected"]) == (0, 248, 2)
    assert info["rejections"][0]["status"] == 422


def test_flush_with_cmdrdata_down_fails(backlog, capsys, cmdrdata_server):
    cmdrdata_server.stop()
    assert main(["flush", "--timeout", "5"]) == 1
    assert "still queued 250" in capsys.readouterr().out


def test_flush_ignores_retry_timers(env, make_exporter, make_spans, cmdrdata_server, capsys):
    cmdrdata_server.stop()
    exporter = make_exporter(_backoff_base=3600, _backoff_cap=3600)
    exporter.export(make_spans(5))
    exporter.force_flush(500)
    exporter.shutdown(timeout_millis=100)
    cmdrdata_server.start()
    assert main(["flush"]) == 0
    assert len(cmdrdata_server.event_ids()) == 5


def test_status_without_a_spool(env, capsys, spool_dir):
    assert main(["status"]) == 0
    assert "not created yet" in capsys.readouterr().out
    assert not spool_dir.exists()


def test_check_ok(env, capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "cmd-live-v1-****" in out and TEST_API_KEY not in out and out.endswith("ok\n")


def test_check_names_each_problem(monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CMDRDATA_API_KEY", "cmd-live-v1-!!" + TEST_API_KEY)
    monkeypatch.setenv("CMDRDATA_ENDPOINT", "http://example.com/api/events")
    monkeypatch.setenv("CMDRDATA_SPOOL_DIR", str(blocker / "spool"))
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "CMDRDATA_API_KEY is malformed" in out
    assert "CMDRDATA_ENDPOINT" in out and "spool dir" in out and "3 problem(s)" in out
    assert TEST_API_KEY not in out


def test_python_dash_m(env):
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "cmdrdata_exporter", "check"],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def _problems(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("problem")]


def test_check_makes_one_request_that_records_nothing(cmdrdata_server, spool_dir):
    result = run_cli("check", endpoint=cmdrdata_server.url, spool_dir=spool_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.endswith("ok\n") and "key accepted" in result.stdout
    (request,) = cmdrdata_server.requests
    assert request.body == {} and request.status == 400
    assert cmdrdata_server.events == []


def test_check_names_a_rejected_key(cmdrdata_server, spool_dir):
    other = "cmd-live-v1-otherkey0002-Yy8_secretpart"
    result = run_cli("check", endpoint=cmdrdata_server.url, spool_dir=spool_dir, key=other)
    assert result.returncode == 1
    (problem,) = _problems(result.stdout)
    assert "API key" in problem and "rejected" in problem and "HTTP 401" in problem
    assert other not in result.stdout + result.stderr and "secretpart" not in result.stdout


@pytest.mark.parametrize("code", [404, 405, 301])
def test_check_names_a_wrong_endpoint(cmdrdata_server, spool_dir, code):
    endpoint = cmdrdata_server.url_for("/api/event") if code == 404 else cmdrdata_server.url
    if code != 404:
        cmdrdata_server.set_mode(fail_next=1, fail_status=code)
    result = run_cli("check", endpoint=endpoint, spool_dir=spool_dir)
    assert result.returncode == 1
    (problem,) = _problems(result.stdout)
    assert f"HTTP {code}" in problem and endpoint in problem and "wrong endpoint" in problem


def test_check_names_an_unreachable_endpoint_and_offline_skips_the_request(
    cmdrdata_server, spool_dir
):
    url = cmdrdata_server.url
    cmdrdata_server.stop()
    result = run_cli("check", endpoint=url, spool_dir=spool_dir)
    assert result.returncode == 1
    (problem,) = _problems(result.stdout)
    assert "cannot reach" in problem and url in problem

    offline = run_cli("check", "--offline", endpoint=url, spool_dir=spool_dir)
    assert offline.returncode == 0 and offline.stdout.endswith("ok\n")
    assert "not checked" in offline.stdout


def test_status_shows_the_endpoint_and_a_cleared_last_error(
    make_exporter, make_spans, cmdrdata_server, spool_dir
):
    cmdrdata_server.stop()
    exporter = make_exporter()
    exporter.export(make_spans(3))
    deadline = time.monotonic() + 10
    while not exporter.status()["last_error"] and time.monotonic() < deadline:
        time.sleep(0.02)
    status = run_cli("status", endpoint=cmdrdata_server.url, spool_dir=spool_dir)
    (last,) = [line for line in status.stdout.splitlines() if line.startswith("last error")]
    assert "ConnectError" in last and "cleared" not in last
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", last)  # when it happened

    cmdrdata_server.start()
    assert cmdrdata_server.wait_for(3, 15)
    exporter.shutdown()
    status = run_cli("status", endpoint=cmdrdata_server.url, spool_dir=spool_dir)
    assert f"endpoint   {cmdrdata_server.url}\n" in status.stdout
    assert "queued     0" in status.stdout and "delivered  3" in status.stdout
    (last,) = [line for line in status.stdout.splitlines() if line.startswith("last error")]
    assert "ConnectError" in last and "cleared" in last
