"""Shared machinery for the fake provider HTTP servers used by the test-suite.

Each provider module (``openai_server``, ``anthropic_server``, ``gemini_server``,
``bedrock_server``, ``mistral_server``, ``cohere_server``, ``groq_server``,
``ollama_server``) subclasses :class:`FakeProviderServer`.  A server:

* listens on ``127.0.0.1`` on an ephemeral port (``server.url``), served by a
  ``ThreadingHTTPServer`` running in a daemon thread, speaking HTTP/1.1 with
  keep-alive.  JSON bodies carry ``Content-Length``; streamed bodies (SSE,
  NDJSON, AWS event streams: ``Exchange.start_stream`` + ``stream_events`` /
  ``stream_frames``) use chunked transfer encoding by default
  (``server.sse_framing = "close"`` switches to a close-delimited body, as some
  proxies do);
* records every request in ``server.requests`` (:class:`RecordedRequest`:
  method, path, query, case-insensitive headers, parsed JSON body, plus the
  scenario/usage that was used to answer it);
* answers from a FIFO queue of scripted steps (``server.next(...)``,
  ``server.next_error(...)``, ``server.next_raw(...)``, ``server.script(...)``)
  and falls back to ``server.scenario`` (the default scenario, whose usage is
  ``server.usage``) when the queue is empty;
* is a context manager (``with OpenAIFakeServer() as srv: ...``) and can be
  ``reset()`` between tests (clears requests, queue and restores defaults).

Fault injection knobs live on every scenario (see :class:`ScenarioBase`):

* ``drop_after=K``      -- send K stream events (SSE events, NDJSON lines, event-stream
                           frames), then kill the TCP connection mid-body (the
                           client sees an incomplete chunked body);
* ``truncate_after=K``  -- send K events, then end the HTTP body cleanly but
                           without the provider's stream terminator
                           (``[DONE]`` / ``message_stop`` / final chunk);
* ``chunk_delay=s``     -- sleep ``s`` seconds before every SSE event;
* ``status``/``headers``-- override the success status / add response headers.

HTTP errors with the provider's JSON error body are scripted with
``server.next_error(status, message=..., times=n)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "ErrorStep",
    "Exchange",
    "FakeProviderServer",
    "Headers",
    "RawStep",
    "RecordedRequest",
    "ScenarioBase",
    "split_text",
]


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only view of request headers.

    Repeated headers are joined with ``", "`` (``get_all`` returns them separately).
    """

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items = [(k, v) for k, v in items]
        merged: dict[str, tuple[str, list[str]]] = {}
        for key, value in self._items:
            entry = merged.setdefault(key.lower(), (key, []))
            entry[1].append(value)
        self._merged = merged

    def __getitem__(self, key: str) -> str:
        return ", ".join(self._merged[key.lower()][1])

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._merged

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._merged.values())

    def __len__(self) -> int:
        return len(self._merged)

    def get_all(self, key: str) -> list[str]:
        entry = self._merged.get(key.lower())
        return list(entry[1]) if entry else []

    def raw_items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass
class RecordedRequest:
    """One request received by a fake server."""

    method: str
    path: str
    query: dict[str, str]
    query_multi: dict[str, list[str]]
    headers: Headers
    raw_body: bytes
    json: Any
    #: the scenario (or ErrorStep / RawStep) used to answer this request
    step: Any = None

    @property
    def body(self) -> Any:
        """Alias of :attr:`json` (the parsed JSON body, ``None`` if not JSON)."""
        return self.json

    @property
    def usage(self) -> Any:
        """Usage object served for this request (``None`` for errors)."""
        return getattr(self.step, "usage", None)

    @property
    def stream(self) -> bool:
        return isinstance(self.json, dict) and bool(self.json.get("stream"))


@dataclass
class ScenarioBase:
    """Fields common to every provider's scenario.

    ``model``: model name to return; ``None`` maps the requested model through the
    server's ``model_map`` (unknown names are echoed unchanged).
    ``response_id``: id to return; ``None`` generates a deterministic id from a
    per-server counter.
    ``chunks``: number of content delta events in a stream.
    ``content``: full text of the answer; ``None`` generates ``"t0 t1 ... t{n-1} "``
    (one ``"t{i} "`` piece per chunk).  A given content is split into exactly
    ``chunks`` pieces when it is at least that long, otherwise one piece per char.
    """

    model: str | None = None
    response_id: str | None = None
    chunks: int = 5
    content: str | None = None
    # --- faults -----------------------------------------------------------------
    drop_after: int | None = None
    truncate_after: int | None = None
    chunk_delay: float = 0.0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def pieces(self) -> list[str]:
        if self.content is None:
            return [f"t{i} " for i in range(self.chunks)]
        return split_text(self.content, self.chunks)

    def text(self) -> str:
        return "".join(self.pieces())


def split_text(text: str, n: int) -> list[str]:
    """Split ``text`` into ``n`` contiguous pieces (one per char if shorter)."""
    if n <= 0:
        return [text] if text else []
    if len(text) <= n:
        return list(text) if text else [""]
    size, extra = divmod(len(text), n)
    out: list[str] = []
    pos = 0
    for i in range(n):
        step = size + (1 if i < extra else 0)
        out.append(text[pos : pos + step])
        pos += step
    return out


@dataclass
class ErrorStep:
    """Answer with ``status`` and the provider's JSON error body.

    ``body`` replaces the generated error body entirely when given.
    ``retry_after_ms``: adds ``retry-after-ms`` (default 1 ms so that a
    "fail once then succeed" test with ``max_retries>=1`` does not sleep).
    ``should_retry``: adds ``x-should-retry: true|false`` when not ``None``.
    """

    status: int = 429
    message: str | None = None
    type: str | None = None
    code: str | None = None
    param: str | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after_ms: int | None = 1
    should_retry: bool | None = None


@dataclass
class RawStep:
    """Answer with an arbitrary status / body / headers (body: bytes, str or JSON)."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)


class _StreamAborted(Exception):
    pass


class Exchange:
    """Write side of one HTTP exchange (wraps the request handler)."""

    def __init__(self, handler: _Handler, server: FakeProviderServer) -> None:
        self._h = handler
        self._server = server
        self._streaming = False
        self._chunked = False
        self.events_sent = 0

    # -- plain responses -------------------------------------------------------
    def send_bytes(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        h = self._h
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        for k, v in self._server.common_headers().items():
            h.send_header(k, v)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()

    def send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.send_bytes(status, body, "application/json", headers)

    # -- streamed bodies ---------------------------------------------------------
    def start_stream(
        self, status: int, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        """Start a streamed body of any type (SSE, NDJSON, AWS event stream).

        Framed as ``server.sse_framing`` says: chunked, or close-delimited.
        """
        h = self._h
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        self._chunked = self._server.sse_framing == "chunked"
        if self._chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Connection", "close")
            h.close_connection = True
        for k, v in self._server.common_headers().items():
            h.send_header(k, v)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.flush()
        self._streaming = True

    def start_sse(self, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self.start_stream(
            status,
            "text/event-stream; charset=utf-8",
            {"Cache-Control": "no-cache", **(headers or {})},
        )

    def _write_body(self, data: bytes) -> None:
        if not data:
            return
        if self._chunked:
            data = f"{len(data):X}\r\n".encode() + data + b"\r\n"
        self._h.wfile.write(data)
        self._h.wfile.flush()

    def write_raw(self, data: bytes) -> None:
        """Write raw bytes into the SSE body (no event accounting)."""
        self._write_body(data)

    def sse(self, data: str | Any, event: str | None = None, sep: str = "\n") -> None:
        """Write one SSE event (``data`` is JSON-encoded unless it is a ``str``)."""
        if not isinstance(data, str):
            data = json.dumps(data, separators=(",", ":"))
        lines = []
        if event is not None:
            lines.append(f"event: {event}")
        lines.extend(f"data: {line}" for line in data.split("\n"))
        self._write_body((sep.join(lines) + sep + sep).encode())
        self.events_sent += 1

    def end_sse(self) -> None:
        if self._chunked:
            self._h.wfile.write(b"0\r\n\r\n")
            self._h.wfile.flush()
        else:
            self._h.close_connection = True

    def drop(self) -> None:
        """Kill the connection abruptly (mid-body)."""
        h = self._h
        with contextlib.suppress(Exception):
            h.wfile.flush()
        h.close_connection = True
        with contextlib.suppress(OSError):
            h.connection.shutdown(socket.SHUT_RDWR)
        raise _StreamAborted()

    def stream_events(
        self,
        events: Iterable[tuple[str | None, Any]],
        scenario: ScenarioBase,
        *,
        terminator: Iterable[tuple[str | None, Any]] = (),
        sep: str = "\n",
    ) -> None:
        """Send ``events`` then ``terminator`` honouring the scenario's stream faults.

        Each item is ``(event_name_or_None, data)``. ``drop_after`` /
        ``truncate_after`` count events over the concatenation of both lists.
        """
        all_events = [*events, *terminator]
        self._paced(all_events, scenario, lambda ev: self.sse(ev[1], event=ev[0], sep=sep))

    def stream_frames(self, frames: Iterable[bytes], scenario: ScenarioBase) -> None:
        """Send pre-encoded frames (NDJSON lines, event-stream messages) then end the body.

        The scenario's ``drop_after`` / ``truncate_after`` / ``chunk_delay`` count frames.
        """
        self._paced(list(frames), scenario, self._send_frame)

    def _send_frame(self, frame: bytes) -> None:
        self._write_body(frame)
        self.events_sent += 1

    def _paced(self, items: list[Any], scenario: ScenarioBase, send: Any) -> None:
        for i, item in enumerate(items):
            if scenario.drop_after is not None and i >= scenario.drop_after:
                self.drop()
            if scenario.truncate_after is not None and i >= scenario.truncate_after:
                break
            if scenario.chunk_delay:
                time.sleep(scenario.chunk_delay)
            send(item)
        if scenario.drop_after is not None and scenario.drop_after >= len(items):
            self.drop()
        self.end_sse()


class QuietHandler(BaseHTTPRequestHandler):
    """An HTTP/1.1 (keep-alive) request handler that logs nothing: every test server's base."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass


class _Handler(QuietHandler):
    server_version = "fake-provider/1.0"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after this
    fake: FakeProviderServer  # set on the per-server subclass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        raw = self._read_body()
        parts = urlsplit(self.path)
        query_multi = parse_qs(parts.query, keep_blank_values=True)
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        req = RecordedRequest(
            method=self.command,
            path=parts.path,
            query={k: v[0] for k, v in query_multi.items()},
            query_multi=query_multi,
            headers=Headers(self.headers.items()),
            raw_body=raw,
            json=parsed,
        )
        ex = Exchange(self, self.fake)
        try:
            self.fake._handle(req, ex)
        except _StreamAborted:
            pass
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.open_connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.conn_lock:
                self.open_connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # connection resets from clients that gave up are expected


S = TypeVar("S", bound=ScenarioBase)


class FakeProviderServer(Generic[S]):
    """Base class: lifecycle, recording, step queue, error bodies."""

    Scenario: ClassVar[type[ScenarioBase]] = ScenarioBase
    #: requested model -> served model (``scenario.model`` overrides)
    DEFAULT_MODEL_MAP: ClassVar[dict[str, str]] = {}
    id_prefix: ClassVar[str] = "id_"

    def __init__(self, scenario: S | None = None, *, sse_framing: str = "chunked") -> None:
        self._lock = threading.RLock()
        self._initial_scenario = scenario
        self._initial_framing = sse_framing
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Any] = deque()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counters: dict[str, int] = {}
        self.reset()

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> FakeProviderServer[S]:
        if self._httpd is not None:
            return self
        handler = type(f"{type(self).__name__}Handler", (_Handler,), {"fake": self})
        self._httpd = _HTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        with httpd.conn_lock:
            conns = list(httpd.open_connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    close = stop

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash, no API prefix)."""
        return f"http://127.0.0.1:{self.port}"

    # -- state -----------------------------------------------------------------
    def reset(self) -> None:
        """Forget requests and queued steps, restore the default scenario."""
        with self._lock:
            self.requests.clear()
            self._queue.clear()
            self._counters = {}
            self.scenario: S = (
                dataclasses.replace(self._initial_scenario)
                if self._initial_scenario is not None
                else self.Scenario()  # type: ignore[assignment]
            )
            self.model_map: dict[str, str] = dict(self.DEFAULT_MODEL_MAP)
            self.sse_framing = self._initial_framing

    @property
    def usage(self) -> Any:
        """Usage of the default scenario (what an unscripted call reports)."""
        return self.scenario.usage  # type: ignore[attr-defined]

    @usage.setter
    def usage(self, value: Any) -> None:
        self.scenario.usage = value  # type: ignore[attr-defined]

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            return self.requests[-1]

    def requests_to(self, path_fragment: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if path_fragment in r.path]

    # -- scripting -------------------------------------------------------------
    def configure(self, **overrides: Any) -> S:
        """Change the default scenario (applies to every unscripted call)."""
        with self._lock:
            self.scenario = dataclasses.replace(self.scenario, **overrides)
            return self.scenario

    def next(self, scenario: S | None = None, /, *, times: int = 1, **overrides: Any) -> S:
        """Queue a success scenario (default scenario + ``overrides``) for the next call(s)."""
        base = scenario if scenario is not None else self.scenario
        sc = dataclasses.replace(base, **overrides)
        with self._lock:
            for _ in range(times):
                self._queue.append(sc)
        return sc

    def next_error(
        self, status: int = 429, message: str | None = None, *, times: int = 1, **kwargs: Any
    ) -> ErrorStep:
        """Queue an HTTP error answered with the provider's JSON error body."""
        step = ErrorStep(status=status, message=message, **kwargs)
        with self._lock:
            for _ in range(times):
                self._queue.append(step)
        return step

    def next_raw(
        self,
        status: int = 200,
        body: Any = b"",
        headers: dict[str, str] | None = None,
        *,
        times: int = 1,
    ) -> RawStep:
        step = RawStep(status=status, body=body, headers=dict(headers or {}))
        with self._lock:
            for _ in range(times):
                self._queue.append(step)
        return step

    def script(self, *steps: Any) -> None:
        """Queue pre-built steps (scenarios, ``ErrorStep``, ``RawStep``) in order."""
        with self._lock:
            self._queue.extend(steps)

    @property
    def pending(self) -> int:
        """Number of scripted steps not consumed yet."""
        with self._lock:
            return len(self._queue)

    # -- helpers for subclasses ------------------------------------------------
    def _next_step(self) -> Any:
        with self._lock:
            return self._queue.popleft() if self._queue else dataclasses.replace(self.scenario)

    def _next_id(self, prefix: str | None = None) -> str:
        """``prefix`` + a 24-digit counter; one counter per prefix, reset by ``reset()``.

        So the first chat completion of a test is ``chatcmpl-fake000...0001``.
        """
        prefix = prefix or self.id_prefix
        with self._lock:
            n = self._counters.get(prefix, 0) + 1
            self._counters[prefix] = n
        return f"{prefix}{n:024d}"

    def served_model(self, scenario: ScenarioBase, requested: str | None) -> str:
        if scenario.model is not None:
            return scenario.model
        requested = requested or "unknown-model"
        return self.model_map.get(requested, requested)

    def common_headers(self) -> dict[str, str]:
        return {}

    def error_body(self, step: ErrorStep) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _send_error(self, ex: Exchange, step: ErrorStep) -> None:
        headers = dict(step.headers)
        if step.retry_after_ms is not None:
            headers.setdefault("retry-after-ms", str(step.retry_after_ms))
        if step.should_retry is not None:
            headers.setdefault("x-should-retry", "true" if step.should_retry else "false")
        body = step.body if step.body is not None else self.error_body(step)
        ex.send_json(step.status, body, headers)

    def _send_raw(self, ex: Exchange, step: RawStep) -> None:
        body = step.body
        ctype = step.headers.get("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes | bytearray):
            body = json.dumps(body).encode()
        headers = {k: v for k, v in step.headers.items() if k.lower() != "content-type"}
        ex.send_bytes(step.status, bytes(body), ctype, headers)

    def _handle(self, req: RecordedRequest, ex: Exchange) -> None:
        route = self.route(req)
        if route is None:
            step: Any = ErrorStep(
                status=404, message=f"Unknown path {req.method} {req.path}", retry_after_ms=None
            )
        else:
            step = self._next_step()
        req.step = step
        with self._lock:
            self.requests.append(req)
        if isinstance(step, ErrorStep):
            self._send_error(ex, step)
        elif isinstance(step, RawStep):
            self._send_raw(ex, step)
        else:
            assert route is not None
            route(req, ex, step)

    def route(self, req: RecordedRequest) -> Any:  # pragma: no cover - abstract
        """Return ``callable(req, exchange, scenario)`` or ``None`` for 404."""
        raise NotImplementedError
