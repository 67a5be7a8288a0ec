"""``cmdrdata-exporter serve``: the real command, real OTLP exporters and collectors in front.

Each receiver is the installed console script in its own process with its own spool, billing at
the local fake cmdrdata.
"""

from __future__ import annotations

import gzip
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from cmdrdata_exporter.diagnostics import Drops
from cmdrdata_exporter.spool import SqliteSpool
from tests.collector.rotel import RotelCollector, free_port, rotel_binary
from tests.span_maker import child_env, usage_spans

pytest.importorskip("uvicorn", reason="needs the [serve] extra")

OPENINFERENCE = {  # an OpenInference LLM span of an Anthropic call, as that package writes it
    "gen_ai__operation__name": None,
    "gen_ai__provider__name": None,
    "gen_ai__request__model": None,
    "gen_ai__response__model": None,
    "gen_ai__usage__input_tokens": None,
    "gen_ai__usage__output_tokens": None,
    "openinference__span__kind": "LLM",
    "llm__provider": "anthropic",
    "llm__model_name": "claude-sonnet-4-5",
    "llm__token_count__prompt": 1020,
    "llm__token_count__completion": 40,
    "llm__token_count__prompt_details__cache_read": 900,
    "llm__token_count__prompt_details__cache_write": 30,
    "user__id": "cust-9",
}


class Serve:
    """One ``cmdrdata-exporter serve`` process."""

    def __init__(self, endpoint: str, spool: Path, token: str | None = None, *extra: str):
        self.port = free_port()
        env = child_env(endpoint, spool)
        env["CMDRDATA_CUSTOMER_ATTRIBUTES"] = "cmdrdata.customer_id,user.id"
        if token:
            env["CMDRDATA_SERVE_TOKEN"] = token
        exe = Path(sys.executable).with_name("cmdrdata-exporter")
        self.process = subprocess.Popen(
            [str(exe), "serve", "--port", str(self.port), *extra],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.process.kill()
        raise RuntimeError(self.process.communicate()[0].decode())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> tuple[int, float, str]:
        """SIGTERM; (exit code, seconds to exit, output)."""
        start = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            out, _ = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        return self.process.returncode, time.monotonic() - start, out.decode(errors="replace")


@pytest.fixture
def serve(cmdrdata_server, tmp_path) -> Iterator[Serve]:
    receiver = Serve(cmdrdata_server.url, tmp_path / "spool", None, "--hold", "0.2")
    yield receiver
    if receiver.process.poll() is None:
        receiver.stop()


def test_otlp_protobuf_gzip_and_json_are_billed_once_durable(serve, cmdrdata_server):
    ours = usage_spans(2, cmdrdata__customer_id="acme")
    foreign = usage_spans(1, scope="openinference.instrumentation.anthropic", **OPENINFERENCE)
    exporter = OTLPSpanExporter(endpoint=f"{serve.url}/v1/traces", compression=Compression.Gzip)
    assert exporter.export(ours + foreign) == SpanExportResult.SUCCESS
    assert cmdrdata_server.wait_for(3, timeout=10)
    by_customer = {e["customer_id"]: e for e in cmdrdata_server.events}
    assert by_customer["acme"]["input_tokens"] == 1200
    theirs = by_customer["cust-9"]
    assert (theirs["provider"], theirs["model"]) == ("anthropic", "claude-sonnet-4-5")
    assert (theirs["input_tokens"], theirs["output_tokens"]) == (1020, 40)
    assert theirs["metadata"]["cache_write_input_tokens"] == 30
    body = (
        b'{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"scope":{"name":"x"},'
        b'"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331",'
        b'"endTimeUnixNano":"1700000000000000000","attributes":['
        b'{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},'
        b'{"key":"gen_ai.provider.name","value":{"stringValue":"openai"}},'
        b'{"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o-mini"}},'
        b'{"key":"gen_ai.usage.input_tokens","value":{"intValue":"15"}},'
        b'{"key":"gen_ai.usage.output_tokens","value":{"intValue":"5"}}]}]}]}]}'
    )
    answer = httpx.post(
        f"{serve.url}/v1/traces", content=body, headers={"content-type": "application/json"}
    )
    assert (answer.status_code, answer.text) == (200, "{}")
    assert cmdrdata_server.wait_for(4, timeout=10)
    code, seconds, out = serve.stop()
    assert code == 0 and seconds < 10, out
    assert "cmd-live" not in out and "acme" not in out


def test_bad_requests_get_their_status(cmdrdata_server, tmp_path):
    receiver = Serve(cmdrdata_server.url, tmp_path / "spool", "s3cret", "--max-body-mb", "1")
    try:
        url = f"{receiver.url}/v1/traces"
        auth = {"authorization": "Bearer s3cret", "content-type": "application/x-protobuf"}
        assert httpx.post(url, content=b"", headers={}).status_code == 401
        assert httpx.post(url, content=b"\xff\x00garbage", headers=auth).status_code == 400
        assert httpx.post(url, content=b"x" * (2 << 20), headers=auth).status_code == 413
        bomb = gzip.compress(b"\x00" * (8 << 20))  # small on the wire, 8 MiB inflated
        gz = {**auth, "content-encoding": "gzip"}
        assert httpx.post(url, content=bomb, headers=gz).status_code == 413
        assert httpx.post(url, content=b"not gzip", headers=gz).status_code == 400
        assert httpx.get(f"{receiver.url}/healthz").status_code == 200
        empty = OTLPSpanExporter(endpoint=url, headers={"authorization": "Bearer s3cret"})
        assert empty.export(usage_spans(1)) == SpanExportResult.SUCCESS
        assert cmdrdata_server.wait_for(1, timeout=10)
    finally:
        code, seconds, out = receiver.stop()
    assert code == 0 and seconds < 10
    assert "s3cret" not in out


def test_unwritable_spool_answers_503_with_retry_after(cmdrdata_server, tmp_path):
    spool = tmp_path / "spool"
    spool.write_text("a file where the spool dir should be")
    receiver = Serve(cmdrdata_server.url, spool)
    try:
        exporter_url = f"{receiver.url}/v1/traces"
        body = encode_spans(usage_spans(1)).SerializeToString()
        answer = httpx.post(
            exporter_url, content=body, headers={"content-type": "application/x-protobuf"}
        )
        assert answer.status_code == 503
        assert answer.headers["retry-after"].isdigit()
    finally:
        receiver.stop()


def test_two_receivers_behind_collectors_bill_a_span_sent_twice_once(cmdrdata_server, tmp_path):
    """Scale-out: each receiver has its own spool; the same span reaching both (a retry that a
    load balancer sent elsewhere) gives one event id at cmdrdata."""
    binary, why_not = rotel_binary()
    if binary is None:
        pytest.skip(why_not)
    receivers = [Serve(cmdrdata_server.url, tmp_path / f"spool-{i}") for i in (1, 2)]
    collectors = []
    try:
        for i, receiver in enumerate(receivers):
            workdir = tmp_path / f"rotel-{i}"
            workdir.mkdir()
            collectors.append(RotelCollector(binary, receiver, workdir).start())  # type: ignore[arg-type]
        spans = usage_spans(3, cmdrdata__customer_id="acme")
        for collector in collectors:
            exporter = OTLPSpanExporter(endpoint=f"{collector.http_endpoint}/v1/traces")
            assert exporter.export(spans) == SpanExportResult.SUCCESS
        # Both receivers deliver; cmdrdata keeps one event per id and answers the repeat 200.
        assert cmdrdata_server.wait_for(3, timeout=20)
        deadline = time.monotonic() + 20
        while cmdrdata_server.duplicates < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (cmdrdata_server.count, cmdrdata_server.duplicates) == (3, 3)
        keys = [r.headers["Idempotency-Key"] for r in cmdrdata_server.requests]
        assert len(keys) == 6 and len(set(keys)) == 3
        assert sorted(set(keys)) == sorted(cmdrdata_server.event_ids())
    finally:
        for collector in collectors:
            collector.stop()
        for receiver in receivers:
            receiver.stop()


def test_accepted_spans_survive_sigterm_and_a_stalled_client(tmp_path):
    """cmdrdata unreachable: what got a 200 is in the spool after SIGTERM, and a client that
    stalls mid-body neither blocks other requests nor keeps the receiver from exiting."""
    spool = tmp_path / "spool"
    receiver = Serve(f"http://127.0.0.1:{free_port()}/api/events", spool)
    stalled = socket.create_connection(("127.0.0.1", receiver.port))
    try:
        stalled.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 100000\r\n\r\n" + b"\x0a" * 10
        )
        exporter = OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces")
        assert exporter.export(usage_spans(5)) == SpanExportResult.SUCCESS
        code, seconds, out = receiver.stop()
    finally:
        stalled.close()
    assert code == 0 and seconds < 10, out
    left = SqliteSpool(spool, 1000, Drops())
    try:
        assert left.pending() == 5
    finally:
        left.close()


def test_a_full_spool_is_not_durable_so_the_sender_retries(make_exporter, cmdrdata_server):
    """The 503 path when the spool is at its cap: what fits is kept, the request is refused;
    once delivery made room, the same request again is accepted and each span billed once."""
    from cmdrdata_exporter.otlp import decode_protobuf
    from cmdrdata_exporter.serve import durable_biller

    cmdrdata_server.set_mode(fail_next=1000, fail_status=503)  # cmdrdata down for now
    exporter = make_exporter(span_source="genai", bill_unsampled=False, max_spool_events=4)
    bill = durable_biller(exporter)

    def request() -> list:
        return decode_protobuf(encode_spans(usage_spans(3)).SerializeToString())

    first, second = request(), request()
    assert bill(first) is True
    assert bill(second) is False  # one of three fits
    assert exporter.status()["queued"] == 4
    assert bill(second) is False  # still full: the sender keeps the spans and retries
    cmdrdata_server.reset_mode()
    assert cmdrdata_server.wait_for(4, timeout=15)
    deadline = time.monotonic() + 15
    while exporter.status()["queued"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bill(second) is True
    assert cmdrdata_server.wait_for(6, timeout=15)
    assert len(set(cmdrdata_server.event_ids())) == 6
