"""``cmdrdata-exporter status | flush | check``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cmdrdata_exporter.cli import main
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
