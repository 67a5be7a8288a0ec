"""A minimal forwarding HTTP proxy for tests: plain-HTTP requests in absolute form only.

It records each request line it forwarded (``POST http://host:port/path``) and the
``Proxy-Authorization`` header it saw, then relays the request and the reply unchanged.
"""

from __future__ import annotations

import http.client
import threading
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.servers.base import QuietHandler

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection"}


class _Handler(QuietHandler):
    server: _Server

    def do_POST(self) -> None:
        target = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.owner.lock:
            self.server.owner.seen.append(f"{self.command} {self.path}")
            self.server.owner.proxy_auth.append(self.headers.get("Proxy-Authorization"))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        try:
            upstream.request(self.command, target.path or "/", body=body, headers=headers)
            reply = upstream.getresponse()
            data = reply.read()
        finally:
            upstream.close()
        self.send_response(reply.status)
        for name, value in reply.getheaders():
            if name.lower() not in _HOP_BY_HOP | {"content-length", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: ForwardingProxy):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner


class ForwardingProxy:
    """Use as a context manager; ``url`` is the proxy's address for ``HTTP_PROXY``."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.proxy_auth: list[str | None] = []
        self.lock = threading.Lock()
        self._httpd = _Server(self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> ForwardingProxy:
        threading.Thread(
            target=self._httpd.serve_forever, daemon=True, kwargs={"poll_interval": 0.05}
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
