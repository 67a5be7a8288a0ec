"""Delivery over HTTPS: the CA bundle the environment names is trusted, nothing else is."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from cmdrdata_exporter import CmdrDataSpanExporter
from tests.exporter.conftest import FAST
from tests.servers.cmdrdata_server import TEST_API_KEY, CmdrDataServer


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_server(ca: trustme.CA) -> Iterator[CmdrDataServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with CmdrDataServer(tls=context) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_ca_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def _exporter(server: CmdrDataServer, spool_dir: Path) -> CmdrDataSpanExporter:
    return CmdrDataSpanExporter(
        api_key=TEST_API_KEY, endpoint=server.url, spool_dir=spool_dir, **FAST
    )


def test_events_are_delivered_over_https_with_the_ca_from_ssl_cert_file(
    ca, https_server, monkeypatch, tmp_path, make_spans
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    exporter = _exporter(https_server, tmp_path / "spool")
    try:
        assert https_server.url.startswith("https://")
        exporter.export(make_spans(3))
        assert exporter.force_flush(10_000)
    finally:
        exporter.shutdown(timeout_millis=500)
    assert len(https_server.events) == 3


def test_an_untrusted_certificate_keeps_the_events_and_says_so_once(
    https_server, tmp_path, make_spans, caplog
) -> None:
    exporter = _exporter(https_server, tmp_path / "spool")
    try:
        with caplog.at_level(logging.WARNING, logger="cmdrdata_exporter"):
            exporter.export(make_spans(3))
            assert not exporter.force_flush(1_500)
        assert exporter.status()["queued"] == 3
    finally:
        exporter.shutdown(timeout_millis=200)
    assert https_server.events == []
    warnings = [r for r in caplog.records if "cannot deliver" in r.getMessage()]
    assert len(warnings) == 1 and "ConnectError" in warnings[0].getMessage()
