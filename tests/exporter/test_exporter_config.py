"""SPEC section 6: settings from keywords, then environment; never a raise from the env."""

from __future__ import annotations

import logging

import pytest

from cmdrdata_exporter import CmdrDataSpanExporter
from cmdrdata_exporter.config import DEFAULT_ENDPOINT, resolve
from tests.servers.cmdrdata_server import TEST_API_KEY

LEGACY_KEY = "tk-" + "a1" * 20


def _errors(caplog, level=logging.ERROR):
    return [r for r in caplog.records if r.name.startswith("cmdrdata") and r.levelno >= level]


def test_environment_is_read_and_keywords_override_it(monkeypatch, tmp_path):
    monkeypatch.setenv("CMDRDATA_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("CMDRDATA_ENDPOINT", "http://localhost:9/api/events")
    monkeypatch.setenv("CMDRDATA_TIMEOUT", "2.5")
    monkeypatch.setenv("CMDRDATA_SPOOL_DIR", str(tmp_path / "env-spool"))
    monkeypatch.setenv("CMDRDATA_SPOOL", "MEMORY")
    monkeypatch.setenv("CMDRDATA_DEFAULT_CUSTOMER_ID", "house")
    monkeypatch.setenv("CMDRDATA_SPAN_SOURCE", "genai")
    monkeypatch.setenv("CMDRDATA_DISABLED", "no")
    monkeypatch.setenv("CMDRDATA_BILL_UNSAMPLED", "false")
    s = resolve()
    assert (s.api_key, s.endpoint, s.timeout, s.spool) == (
        TEST_API_KEY,
        "http://localhost:9/api/events",
        2.5,
        "memory",
    )
    assert s.spool_dir == tmp_path / "env-spool"
    assert (s.default_customer_id, s.span_source, s.disabled, s.bill_unsampled) == (
        "house",
        "genai",
        False,
        False,
    )
    assert s.problems == ()
    o = resolve({"api_key": LEGACY_KEY, "timeout": 1, "spool": "sqlite", "bill_unsampled": True})
    assert (o.api_key, o.timeout, o.spool, o.bill_unsampled) == (LEGACY_KEY, 1.0, "sqlite", True)


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    s = resolve({}, {"XDG_CACHE_HOME": str(tmp_path)})
    assert s.endpoint == DEFAULT_ENDPOINT and s.timeout == 5.0
    assert s.spool_dir == tmp_path / "cmdrdata" and s.spool == "sqlite"
    assert (s.default_customer_id, s.span_source) == ("unattributed", "instrumentor")
    assert not s.disabled and s.bill_unsampled
    home = resolve({}, {"HOME": str(tmp_path)})
    assert str(home.spool_dir).endswith("/.cache/cmdrdata")


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="apikey"):
        CmdrDataSpanExporter(apikey=TEST_API_KEY)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_key": "sk-not-a-cmdrdata-key"},
        {"api_key": "tk-short"},
        {"endpoint": "http://api.cmdrdata.ai/api/events"},
        {"endpoint": "ftp://127.0.0.1/x"},
        {"timeout": 0},
        {"timeout": "soon"},
        {"span_source": "everything"},
        {"spool": "redis"},
        {"disabled": "maybe"},
        {"max_spool_events": -1},
    ],
)
def test_explicit_bad_values_raise_value_error(kwargs, tmp_path):
    with pytest.raises(ValueError):
        CmdrDataSpanExporter(spool_dir=tmp_path, **kwargs)


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:8/api/events",
        "http://127.3.4.5/x",
        "http://[::1]:8/x",
        "http://localhost/x",
    ],
)
def test_plain_http_is_fine_for_loopback(endpoint):
    assert resolve({"endpoint": endpoint}, {}).endpoint == endpoint


@pytest.mark.parametrize(
    ("var", "value", "default"),
    [
        ("CMDRDATA_TIMEOUT", "fast", "5"),
        ("CMDRDATA_TIMEOUT", "-3", "5"),
        ("CMDRDATA_DISABLED", "sometimes", "false"),
        ("CMDRDATA_BILL_UNSAMPLED", "2", "true"),
        ("CMDRDATA_SPAN_SOURCE", "all", "instrumentor"),
        ("CMDRDATA_SPOOL", "disk", "sqlite"),
    ],
)
def test_bad_env_value_is_one_clear_log_line(monkeypatch, caplog, spool_dir, var, value, default):
    monkeypatch.setenv(var, value)
    monkeypatch.setenv("CMDRDATA_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("CMDRDATA_SPOOL_DIR", str(spool_dir))
    caplog.set_level(logging.DEBUG, logger="cmdrdata_exporter")
    exporter = CmdrDataSpanExporter()
    exporter.shutdown(timeout_millis=100)
    (record,) = _errors(caplog, logging.WARNING)
    message = record.getMessage()
    assert var in message and repr(value) in message and default in message


def test_missing_key_from_env_logs_once_and_keeps_events(
    monkeypatch, caplog, spool_dir, make_spans, cmdrdata_server
):
    monkeypatch.setenv("CMDRDATA_ENDPOINT", cmdrdata_server.url)
    monkeypatch.setenv("CMDRDATA_SPOOL_DIR", str(spool_dir))
    caplog.set_level(logging.DEBUG, logger="cmdrdata_exporter")
    exporter = CmdrDataSpanExporter(_poll_interval=0.05)
    spans = make_spans(5)
    assert exporter.export(spans).name == "SUCCESS"
    (error,) = _errors(caplog)
    assert "CMDRDATA_API_KEY" in error.getMessage() and "kept" in error.getMessage()
    assert exporter.status()["queued"] == 5 and exporter.status()["paused"]
    assert exporter.force_flush(200) is False
    exporter.shutdown()
    assert cmdrdata_server.requests == []

    # A later process with a valid key delivers what the first one kept.
    monkeypatch.setenv("CMDRDATA_API_KEY", TEST_API_KEY)
    second = CmdrDataSpanExporter(_poll_interval=0.05)
    assert cmdrdata_server.wait_for(5, timeout=10)
    second.shutdown()
    assert len(set(cmdrdata_server.event_ids())) == 5


@pytest.mark.parametrize(
    "bad", ["sk-proj-abc", "cmd-live-v1-@@bad@@", "tk-" + "a" * 10, "cmd live v1 x"]
)
def test_malformed_key_from_env_is_an_error_log_not_an_exception(monkeypatch, caplog, bad):
    monkeypatch.setenv("CMDRDATA_API_KEY", bad)
    caplog.set_level(logging.DEBUG, logger="cmdrdata_exporter")
    exporter = CmdrDataSpanExporter()
    exporter.shutdown(timeout_millis=50)
    (error,) = _errors(caplog)
    assert "malformed" in error.getMessage() and bad not in error.getMessage()


def test_bad_endpoint_from_env_is_logged_and_events_kept(monkeypatch, caplog, make_spans):
    monkeypatch.setenv("CMDRDATA_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("CMDRDATA_ENDPOINT", "http://api.cmdrdata.ai/api/events")
    caplog.set_level(logging.DEBUG, logger="cmdrdata_exporter")
    exporter = CmdrDataSpanExporter()
    exporter.export(make_spans(3))
    (error,) = _errors(caplog)
    assert "CMDRDATA_ENDPOINT" in error.getMessage() and "https" in error.getMessage()
    assert exporter.status()["queued"] == 3
    exporter.shutdown(timeout_millis=50)


def test_disabled_accepts_spans_and_does_nothing(
    make_exporter, make_spans, spool_dir, cmdrdata_server
):
    exporter = make_exporter(disabled=True)
    assert exporter.export(make_spans(3)).name == "SUCCESS"
    assert exporter.bill_spans(make_spans(1)) == 0
    assert exporter.force_flush(100) is True
    exporter.shutdown()
    assert not spool_dir.exists()
    assert cmdrdata_server.requests == []


def test_disabled_from_env(monkeypatch, spool_dir, make_spans):
    monkeypatch.setenv("CMDRDATA_DISABLED", "TRUE")
    monkeypatch.setenv("CMDRDATA_SPOOL_DIR", str(spool_dir))
    exporter = CmdrDataSpanExporter()
    assert exporter.export(make_spans(1)).name == "SUCCESS"
    exporter.shutdown()
    assert not spool_dir.exists()


def test_entry_point_loads_the_exporter():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="opentelemetry_traces_exporter") if e.name == "cmdrdata"]
    assert ep.load() is CmdrDataSpanExporter
