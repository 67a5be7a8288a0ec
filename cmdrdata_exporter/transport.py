"""The HTTP connection pool events are POSTed through.

An ``httpx.HTTPTransport`` (httpx's keep-alive pool) used without the ``httpx.Client`` layer:
for one fixed endpoint and fixed headers, the client's per-request URL merging, cookie-jar
parsing and auth/redirect plumbing cost as much CPU as the request itself, and on a busy
machine that caps delivery. What the client would have read from the environment is read here
once: the proxy for the endpoint (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``, honouring
``NO_PROXY``) and the CA bundle (``SSL_CERT_FILE``/``SSL_CERT_DIR``, via httpx's
``trust_env``).
"""

from __future__ import annotations

import logging
import socket
import urllib.request
from urllib.parse import urlsplit

import httpx

logger = logging.getLogger("cmdrdata_exporter.transport")

# Small requests one after another on a kept-alive connection: don't let Nagle's algorithm hold
# the body back waiting for the headers' ACK.
_NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def proxy_for(endpoint: str) -> str | None:
    """The proxy URL the environment sets for ``endpoint``, or None to connect directly."""
    parts = urlsplit(endpoint)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def open_transport(endpoint: str, concurrency: int) -> httpx.HTTPTransport:
    """A pool of up to ``concurrency`` kept-alive connections to ``endpoint``."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    proxy = proxy_for(endpoint)
    try:
        return httpx.HTTPTransport(limits=limits, socket_options=_NO_DELAY, proxy=proxy)
    except Exception as exc:  # an unusable proxy setting (e.g. socks:// without socksio)
        if proxy is None:
            raise
        logger.error(
            "cmdrdata exporter: cannot use the proxy the environment sets for %s (%s); "
            "connecting directly",  # not the message: a proxy URL may carry a password
            urlsplit(endpoint).hostname,
            type(exc).__name__,
        )
        return httpx.HTTPTransport(limits=limits, socket_options=_NO_DELAY)


def timeout_extension(seconds: float) -> dict[str, dict[str, float | None]]:
    """The per-request timeout, in the form a transport reads from the request extensions."""
    return {"timeout": httpx.Timeout(seconds).as_dict()}


def send(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
    """Send ``request`` and read the whole reply, which hands the connection back to the pool."""
    reply = transport.handle_request(request)
    try:
        reply.read()
    finally:
        reply.close()
    return reply
