"""A minimal, fast stand-in for cmdrdata's events API, for delivery benchmarks only.

The test server (``tests/servers/cmdrdata_server.py``) is built for faults, on
``http.server``, and tops out near 1,400 requests/s on this 2-core machine: it, not the
exporter, would be what a throughput benchmark measures. This one is an asyncio loop that
speaks just enough HTTP/1.1 (keep-alive, Content-Length), checks the Bearer key, counts the
distinct ``Idempotency-Key`` values it has seen, and answers 201. Run it as a script: it
prints its URL; ``GET /count`` answers the number of distinct events received.
"""

from __future__ import annotations

import asyncio
import sys

_CREATED = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
_UNAUTHORIZED = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"


def _count_reply(n: int) -> bytes:
    body = str(n).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


async def serve(api_key: str) -> None:
    seen: set[bytes] = set()
    expected_auth = b"bearer " + api_key.encode().lower()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, key, auth = 0, b"", b""
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"idempotency-key":
                        key = value.strip()
                    elif name == b"authorization":
                        auth = value.strip().lower()
                if length:
                    await reader.readexactly(length)
                if head.startswith(b"GET /count"):
                    writer.write(_count_reply(len(seen)))
                elif auth != expected_auth:
                    writer.write(_UNAUTHORIZED)
                else:
                    seen.add(key)
                    writer.write(_CREATED)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}/api/events", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
