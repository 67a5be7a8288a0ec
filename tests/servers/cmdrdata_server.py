"""A local stand-in for cmdrdata's events API, with faults on demand.

Speaks ``POST /api/events`` like the real service as far as the clients know it (Bearer key,
JSON event, 201 ``{"event_id": ...}``), and deduplicates by ``Idempotency-Key`` the way a
well-behaved server would: a repeated key is answered 200 and counted in ``duplicates`` but not
recorded again in ``events``. Faults, set with ``set_mode(...)``:

- ``fail_next=N, fail_status=503``: the next N requests get that status;
- ``rate_limit_next=N, retry_after="2"``: the next N requests get 429 with that header;
- ``hang_next=N, hang_seconds=S``: sleep S seconds, then process and answer normally;
- ``drop_next=N``: close the connection without any response;
- ``unauthorized=True``: 401 for every request until set back to False;
- ``reject=predicate``: 422 for events where ``predicate(event)`` is true;
- ``path="/v2/events"``: serve events there instead (any other path is 404, as a typo is);
- ``fail_status`` may be anything: 404/405/410, or a 3xx that carries ``Location``.

A POST whose body lacks the required fields (``{}``, as ``cmdrdata-exporter check`` sends)
is answered 400 "Missing required field" once the key is accepted, as cmdrdata does.

``stop()`` stops listening (and cuts open keep-alive connections); ``start()`` listens again on
the same port. Run as a script (``python tests/servers/cmdrdata_server.py``) it serves until
killed and prints its URL, for benchmarks that want the server in another process.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TEST_API_KEY = "cmd-live-v1-testkey0001-Zz9_secretpart"
EVENTS_PATH = "/api/events"


@dataclass
class Mode:
    fail_next: int = 0
    fail_status: int = 503
    rate_limit_next: int = 0
    retry_after: str | None = "1"
    hang_next: int = 0
    hang_seconds: float = 1.0
    drop_next: int = 0
    unauthorized: bool = False
    reject: Callable[[dict[str, Any]], bool] | None = None
    record: bool = True  # False: count only (benchmarks)
    path: str = EVENTS_PATH


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int | None = None
    at: float = field(default_factory=time.monotonic)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], owner: CmdrDataServer):
        self.owner = owner
        self.open_sockets: set[socket.socket] = set()
        super().__init__(addr, _Handler)

    def process_request(self, request, client_address):
        self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.open_sockets.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("latin-1")
        received = Received("POST", self.path, dict(self.headers.items()), body)
        status, payload, headers = owner._decide(received, self)
        if status is None:  # drop the connection without a word
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


class CmdrDataServer:
    """The fake cmdrdata; use as a context manager or call ``start()``/``stop()``."""

    def __init__(
        self, api_key: str = TEST_API_KEY, port: int = 0, tls: ssl.SSLContext | None = None
    ):
        self.api_key = api_key
        self.port = port
        self.tls = tls  # a server-side context: serve HTTPS
        self.mode = Mode()
        self.requests: list[Received] = []
        self.events: list[dict[str, Any]] = []
        self.duplicates = 0
        self.count = 0  # accepted events, also when not recording
        self._seen_keys: set[str] = set()
        self._lock = threading.Lock()
        self._accepted = threading.Condition(self._lock)
        self._httpd: _Server | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> CmdrDataServer:
        self._httpd = _Server(("127.0.0.1", self.port), self)
        self.port = self._httpd.server_address[1]
        if self.tls is not None:
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        threading.Thread(
            target=self._httpd.serve_forever, daemon=True, kwargs={"poll_interval": 0.05}
        ).start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        for sock in list(httpd.open_sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> CmdrDataServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Where events are accepted now (``mode.path``)."""
        return self.url_for(self.mode.path)

    def url_for(self, path: str) -> str:
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    # -- control ---------------------------------------------------------------------------

    def set_mode(self, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                if not hasattr(self.mode, name):
                    raise TypeError(f"unknown mode {name}")
                setattr(self.mode, name, value)

    def reset_mode(self) -> None:
        with self._lock:
            self.mode = Mode()

    def event_ids(self) -> list[str]:
        with self._lock:
            return [e["metadata"]["event_id"] for e in self.events]

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        """Wait until at least n events were accepted."""
        end = time.monotonic() + timeout
        with self._accepted:
            while self.count < n:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._accepted.wait(left)
        return True

    # -- the API ---------------------------------------------------------------------------

    def _decide(
        self, received: Received, handler: _Handler
    ) -> tuple[int | None, Any, dict[str, str]]:
        with self._lock:
            mode = self.mode
            if mode.record:
                self.requests.append(received)
            if received.path != mode.path:
                return self._answer(received, 404, {"detail": "Not Found"})
            if mode.drop_next > 0:
                mode.drop_next -= 1
                return None, None, {}
            if mode.fail_next > 0:
                mode.fail_next -= 1
                moved = 300 <= mode.fail_status < 400
                headers = {"Location": self.url_for("/api/v2/events")} if moved else {}
                detail = "moved" if moved else "unavailable"
                return self._answer(received, mode.fail_status, {"detail": detail}, headers)
            if mode.rate_limit_next > 0:
                mode.rate_limit_next -= 1
                headers = {"Retry-After": mode.retry_after} if mode.retry_after else {}
                return self._answer(received, 429, {"detail": "Too Many Requests"}, headers)
            hang = 0.0
            if mode.hang_next > 0:
                mode.hang_next -= 1
                hang = mode.hang_seconds
        if hang:
            time.sleep(hang)
        with self._lock:
            auth = received.headers.get("Authorization", "")
            if self.mode.unauthorized or auth != f"Bearer {self.api_key}":
                return self._answer(received, 401, {"detail": "Invalid API key"})
            event = received.body
            if not isinstance(event, dict) or not all(
                k in event for k in ("customer_id", "model", "provider")
            ):
                return self._answer(received, 400, {"detail": "Missing required field"})
            if self.mode.reject is not None and self.mode.reject(event):
                return self._answer(received, 422, {"detail": [{"msg": "rejected by test"}]})
            key = received.headers.get("Idempotency-Key") or ""
            event_id = key or f"evt_{self.count}"
            if key and key in self._seen_keys:
                self.duplicates += 1
                return self._answer(received, 200, {"event_id": event_id})
            self._seen_keys.add(key)
            self.count += 1
            if self.mode.record:
                self.events.append(event)
            self._accepted.notify_all()
            return self._answer(received, 201, {"event_id": event_id})

    @staticmethod
    def _answer(
        received: Received, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        received.status = status
        return status, payload, headers or {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=TEST_API_KEY)
    parser.add_argument("--no-record", action="store_true", help="count events only")
    args = parser.parse_args()
    server = CmdrDataServer(args.api_key, args.port).start()
    server.set_mode(record=not args.no_record)
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
