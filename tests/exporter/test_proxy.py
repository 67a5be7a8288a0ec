"""Delivery honours the proxy the environment sets, as an HTTP client would."""

from __future__ import annotations

import logging

import pytest

from cmdrdata_exporter.transport import proxy_for
from tests.servers.cmdrdata_server import CmdrDataServer
from tests.servers.http_proxy import ForwardingProxy

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_proxy_for_picks_the_endpoint_scheme_then_all(monkeypatch: pytest.MonkeyPatch) -> None:
    assert proxy_for("https://api.cmdrdata.ai/api/events") is None
    monkeypatch.setenv("ALL_PROXY", "http://all.example:3128")
    assert proxy_for("https://api.cmdrdata.ai/api/events") == "http://all.example:3128"
    monkeypatch.setenv("HTTPS_PROXY", "http://secure.example:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain.example:3128")
    assert proxy_for("https://api.cmdrdata.ai/api/events") == "http://secure.example:3128"
    assert proxy_for("http://127.0.0.1:9/api/events") == "http://plain.example:3128"
    monkeypatch.setenv("NO_PROXY", "cmdrdata.ai,localhost")
    assert proxy_for("https://api.cmdrdata.ai/api/events") is None
    assert proxy_for("http://127.0.0.1:9/api/events") == "http://plain.example:3128"


def test_events_go_through_the_proxy(
    monkeypatch: pytest.MonkeyPatch, make_exporter, make_spans, cmdrdata_server: CmdrDataServer
) -> None:
    with ForwardingProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("://", "://proxyuser:s3cret@"))
        exporter = make_exporter()
        exporter.export(make_spans(5))
        assert exporter.force_flush(10_000)
    assert len(cmdrdata_server.events) == 5
    assert proxy.seen == [f"POST {cmdrdata_server.url}"] * 5
    # Credentials in the proxy URL become Basic proxy authentication, as with any client.
    assert all(auth and auth.startswith("Basic ") for auth in proxy.proxy_auth)


def test_no_proxy_bypasses_it(
    monkeypatch: pytest.MonkeyPatch, make_exporter, make_spans, cmdrdata_server: CmdrDataServer
) -> None:
    with ForwardingProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        exporter = make_exporter()
        exporter.export(make_spans(3))
        assert exporter.force_flush(10_000)
    assert len(cmdrdata_server.events) == 3
    assert proxy.seen == []


def test_unusable_proxy_logs_once_without_its_password_and_connects_directly(
    monkeypatch: pytest.MonkeyPatch,
    make_exporter,
    make_spans,
    cmdrdata_server: CmdrDataServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    try:
        import socksio  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("socksio is installed: a socks proxy would be usable")
    monkeypatch.setenv("HTTP_PROXY", "socks5://proxyuser:s3cret@127.0.0.1:9")
    with caplog.at_level(logging.DEBUG):
        exporter = make_exporter()
        exporter.export(make_spans(2))
        assert exporter.force_flush(10_000)
    assert len(cmdrdata_server.events) == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "proxy" in errors[0].getMessage()
    assert "s3cret" not in caplog.text and "proxyuser" not in caplog.text
