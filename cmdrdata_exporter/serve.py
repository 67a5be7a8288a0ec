"""``cmdrdata-exporter serve``: an OTLP/HTTP receiver that bills the GenAI spans it is sent.

Services in any language (and OpenTelemetry Collectors, with their ``otlphttp`` exporter) send
``POST /v1/traces`` here. The spans go through the same conversion, spool and sender as the
in-process exporter, in ``genai`` mode (SPEC section 11). The answer is 200 only once every
event of the request is in the SQLite spool; a spool that cannot take them durably gets 503
with ``Retry-After``, so the sender keeps the spans and retries (event ids make that harmless).

It runs on uvicorn (ASGI); the app is a plain ASGI callable, so there is no framework between
the socket and the decoder.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import os
import signal
import zlib
from typing import Any

from cmdrdata_exporter.calls import DEFAULT_HOLD
from cmdrdata_exporter.otlp import DecodeError, decode_json, decode_protobuf

logger = logging.getLogger("cmdrdata_exporter.serve")

DEFAULT_MAX_BODY_MB = 32
READ_TIMEOUT = 30.0  # seconds for a whole request body: a stalled client is cut off
RETRY_AFTER = "5"
_PROTOBUF = b"application/x-protobuf"
_JSON = b"application/json"


class Receiver:
    """The ASGI app. ``bill(records) -> bool`` makes events durable (False: it could not)."""

    def __init__(self, bill: Any, token: str | None, max_body: int) -> None:
        self._bill = bill
        self._token = f"Bearer {token}".encode() if token else None
        self._max_body = max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()  # startup
            await send({"type": "lifespan.startup.complete"})
            await receive()  # shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/healthz" and method in ("GET", "HEAD"):
            await _answer(send, 200, b"ok\n", b"text/plain")
            return
        if path != "/v1/traces":
            await _answer(send, 404, b"not found\n", b"text/plain")
            return
        if method != "POST":
            await _answer(send, 405, b"POST only\n", b"text/plain")
            return
        headers = dict(scope["headers"])
        if self._token is not None and not hmac.compare_digest(
            headers.get(b"authorization", b""), self._token
        ):
            await _answer(send, 401, b"missing or wrong bearer token\n", b"text/plain")
            return
        status, body = await self._handle(headers, receive)
        kind = _JSON if headers.get(b"content-type", b"").startswith(_JSON) else _PROTOBUF
        extra = [(b"retry-after", RETRY_AFTER.encode())] if status == 503 else []
        await _answer(send, status, body if status != 200 else _empty(kind), kind, extra)

    async def _handle(self, headers: dict[bytes, bytes], receive: Any) -> tuple[int, bytes]:
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            return 413, b"body too large\n"
        try:
            raw = await asyncio.wait_for(self._read(receive), READ_TIMEOUT)
        except asyncio.TimeoutError:
            return 408, b"body not received in time\n"
        except _TooLarge:
            return 413, b"body too large\n"
        except _Disconnected:
            return 400, b"client went away\n"
        encoding = headers.get(b"content-encoding", b"identity").lower()
        try:
            if encoding == b"gzip":
                raw = _gunzip(raw, self._max_body)
            elif encoding not in (b"identity", b""):
                return 415, b"unsupported content-encoding\n"
            if headers.get(b"content-type", b"").startswith(_JSON):
                records = decode_json(raw)
            else:
                records = decode_protobuf(raw)
        except _TooLarge:
            return 413, b"body too large once decompressed\n"
        except (DecodeError, zlib.error, EOFError):
            return 400, b"not an OTLP trace export request\n"
        durable = await asyncio.to_thread(self._bill, records) if records else True
        if not durable:
            return 503, b"the spool cannot take more now; retry later\n"
        return 200, b""

    async def _read(self, receive: Any) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


def _gunzip(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise _TooLarge
    if not inflater.eof:
        raise EOFError("truncated gzip body")
    return out


def _empty(kind: bytes) -> bytes:
    return b"{}" if kind == _JSON else b""  # an empty ExportTraceServiceResponse


async def _answer(
    send: Any, status: int, body: bytes, kind: bytes, extra: list[tuple[bytes, bytes]] = ()
) -> None:
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def durable_biller(exporter: Any) -> Any:
    """``bill(records) -> bool`` over a genai-mode exporter: True once the events are on disk.

    Not durable: the spool fell back to memory (SPEC section 7), or it was full and dropped
    some of them (``spool_full``); the sender then retries the whole request.
    """
    spool, drops = exporter._spool, exporter._drops

    def bill(records: list[Any]) -> bool:
        if spool is None or spool.disk is None:
            return False
        full_before = drops.snapshot().get("spool_full", 0)
        exporter.bill_spans(records)
        return spool.disk is not None and drops.snapshot().get("spool_full", 0) == full_before

    return bill


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=4318, help="port to listen on (4318)")
    parser.add_argument(
        "--token",
        default=None,
        help="require 'Authorization: Bearer TOKEN' (default: $CMDRDATA_SERVE_TOKEN, which "
        "keeps it out of the process list; neither: no token required)",
    )
    parser.add_argument(
        "--hold",
        type=float,
        default=DEFAULT_HOLD,
        help="seconds another instrumentation's span waits for our span of the same call "
        f"before it is billed (default {DEFAULT_HOLD:g})",
    )
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=DEFAULT_MAX_BODY_MB,
        help=f"largest request body, also once decompressed (default {DEFAULT_MAX_BODY_MB})",
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT, then finish the requests in flight and keep the rest."""
    try:
        import uvicorn
    except ImportError:
        logger.error("cmdrdata-exporter serve needs its extra: pip install '%s[serve]'", _DIST)
        return 2
    from cmdrdata_exporter.exporter import CmdrDataSpanExporter

    token = args.token or os.environ.get("CMDRDATA_SERVE_TOKEN") or None
    if not (args.hold > 0 and args.max_body_mb > 0):
        logger.error("--hold and --max-body-mb must be positive numbers")
        return 2
    exporter = CmdrDataSpanExporter(
        span_source="genai", bill_unsampled=False, foreign_hold=args.hold
    )
    app = Receiver(durable_biller(exporter), token, int(args.max_body_mb * 1024 * 1024))
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=7,  # SPEC: exit within 10 s of SIGTERM
        timeout_keep_alive=30,
    )
    logger.warning(
        "cmdrdata-exporter serve: OTLP/HTTP on http://%s:%d/v1/traces (token %s), spool %s",
        args.host,
        args.port,
        "required" if token else "not required",
        exporter.settings.spool_dir,
    )
    # uvicorn re-raises the stop signal once it has shut down; with the default handler that
    # would kill the process before the exporter shuts down, so ours takes it instead.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    try:
        uvicorn.Server(config).run()
    finally:
        exporter.shutdown(timeout_millis=2000)
    return 0


_DIST = "opentelemetry-instrumentation-cmdrdata"
