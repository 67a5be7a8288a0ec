"""The API key never shows: not in logs (DEBUG included), exceptions, reprs, events or output."""

from __future__ import annotations

import logging

import pytest

from cmdrdata_exporter import CmdrDataSpanExporter, span_to_event
from cmdrdata_exporter.cli import main
from tests.servers.cmdrdata_server import TEST_API_KEY

SECRET_PART = TEST_API_KEY.split("-", 3)[3]


def test_key_never_appears_anywhere(
    monkeypatch, caplog, capsys, make_exporter, make_spans, cmdrdata_server, spool_dir
):
    caplog.set_level(logging.DEBUG)
    cmdrdata_server.set_mode(fail_next=2, reject=lambda e: e["customer_id"] == "r")
    exporter = make_exporter()
    texts = [repr(exporter), str(exporter.settings), repr(exporter.settings)]
    spans = make_spans(5) + make_spans(1, **{"cmdrdata.customer_id": "r"})
    exporter.export(spans)
    assert cmdrdata_server.wait_for(5, 10)
    cmdrdata_server.set_mode(unauthorized=True)
    exporter.export(make_spans(2))
    exporter.force_flush(1000)
    texts.append(str(exporter.status()))
    texts += [str(span_to_event(s, exporter.settings)) for s in spans]
    for bad in (
        {"api_key": TEST_API_KEY + "!"},
        {"api_key": TEST_API_KEY, "endpoint": "http://example.com"},
        {"api_key": TEST_API_KEY, "timeout": -1},
        {"api_key": TEST_API_KEY, "bogus": 1},
    ):
        with pytest.raises((ValueError, TypeError)) as info:
            CmdrDataSpanExporter(**bad)
        texts.append(str(info.value))
    monkeypatch.setenv("CMDRDATA_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("CMDRDATA_SPOOL_DIR", str(spool_dir))
    monkeypatch.setenv("CMDRDATA_ENDPOINT", cmdrdata_server.url)
    for command in (["status"], ["status", "--json"], ["check"], ["flush", "--timeout", "2"]):
        main(command)
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    texts += [r.getMessage() for r in caplog.records] + [str(r.args) for r in caplog.records]
    texts += [r.body and str(r.body) for r in cmdrdata_server.requests]
    joined = "\n".join(t for t in texts if t)
    assert SECRET_PART not in joined
    assert any("cmd-live-v1-****" in t for t in texts)


def test_malformed_key_is_not_echoed(monkeypatch, caplog):
    leaked = "cmd-live-v1-abc def-" + SECRET_PART
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ValueError) as info:
        CmdrDataSpanExporter(api_key=leaked)
    assert SECRET_PART not in str(info.value)
    monkeypatch.setenv("CMDRDATA_API_KEY", leaked)
    exporter = CmdrDataSpanExporter()
    exporter.shutdown(timeout_millis=10)
    assert all(SECRET_PART not in r.getMessage() for r in caplog.records)
