"""Run rotel, the OpenTelemetry collector that the ``rotel`` PyPI package ships, in the tests.

``rotel`` installs a prebuilt ``rotel-agent`` binary inside the Python package. We start it in
the foreground (not with ``--daemon``, so the fixture owns the process and can always kill it),
with OTLP receivers on free loopback ports and its OTLP exporter aimed at a local
:class:`~tests.collector.otlp_receiver.OtlpReceiver`::

    app --OTLP/HTTP--> rotel (127.0.0.1:free) --OTLP/HTTP, gzip--> OtlpReceiver

Fixtures: ``otlp_receiver`` (the receiver alone) and ``rotel_collector`` (rotel in front of the
receiver; ``rotel_collector.receiver`` is that receiver). The test is skipped, with the reason,
when the binary is missing or cannot run on this platform.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .otlp_receiver import OtlpReceiver

__all__ = ["RotelCollector", "otlp_receiver", "rotel_binary", "rotel_collector"]


def rotel_binary() -> tuple[Path | None, str]:
    """The ``rotel-agent`` binary and ``""``, or ``None`` and why it cannot be used here."""
    try:
        import rotel
    except ImportError:
        return (
            None,
            "the rotel package is not installed (pip install rotel; it is in the test extra)",
        )
    binary = Path(rotel.__file__).resolve().parent / "rotel-agent"
    if not binary.is_file():
        return None, f"the rotel package has no collector binary for this platform ({binary})"
    try:
        probe = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:  # wrong architecture, noexec mount, ...
        return None, f"{binary} cannot run on this platform: {exc}"
    if probe.returncode != 0:
        return None, f"{binary} --version failed: {(probe.stderr or probe.stdout).strip()}"
    return binary, ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


class RotelCollector:
    """One rotel process exporting traces (and metrics, logs) over OTLP/HTTP to ``receiver``."""

    def __init__(self, binary: Path, receiver: OtlpReceiver, workdir: Path):
        self.binary = binary
        self.receiver = receiver
        self.workdir = workdir
        self.http_port = 0
        self.grpc_port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "rotel.out"

    @property
    def http_endpoint(self) -> str:
        """Base URL of rotel's OTLP/HTTP receiver (for ``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self, timeout: float = 20.0) -> RotelCollector:
        # A free port can be taken between our probe and rotel's bind: try a few times.
        for _attempt in range(3):
            if self._start_once(timeout):
                return self
        raise RuntimeError(f"rotel did not start listening:\n{self.log()}")

    def _start_once(self, timeout: float) -> bool:
        self.http_port, self.grpc_port = free_port(), free_port()
        args = [
            str(self.binary),
            "start",
            "--otlp-http-endpoint", f"127.0.0.1:{self.http_port}",
            "--otlp-grpc-endpoint", f"127.0.0.1:{self.grpc_port}",
            "--exporter", "otlp",
            "--otlp-exporter-endpoint", self.receiver.url,
            "--otlp-exporter-protocol", "http",
            "--batch-timeout", "50ms",
            "--pid-file", str(self.workdir / "rotel.pid"),
            "--log-file", str(self.workdir / "rotel.log"),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROTEL_")}
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False
            if _listening(self.http_port):
                return True
            time.sleep(0.05)
        self.stop()
        return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A local OTLP/HTTP backend on a free port; ``.spans`` holds what it received."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def rotel_collector(otlp_receiver: OtlpReceiver, tmp_path: Path) -> Iterator[RotelCollector]:
    """rotel listening on free ports, forwarding to ``otlp_receiver``; stopped on teardown."""
    binary, why_not = rotel_binary()
    if binary is None:
        pytest.skip(why_not)
    workdir = tmp_path / "rotel"
    workdir.mkdir()
    collector = RotelCollector(binary, otlp_receiver, workdir)
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()
