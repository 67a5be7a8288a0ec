"""SPEC section 7: a spool that cannot be written, on a real filesystem that is full or read-only.

The disk is not mocked: each test mounts a tiny tmpfs (needs root and a kernel that lets this
process mount; skipped otherwise, e.g. in an unprivileged CI container), fills it or remounts it
read-only, and points the exporter's spool at it. Expected every time: the application sees no
error, exactly one ERROR line explains that events are now kept in memory, and every event
(also those written to the file before the failure) is still delivered.

Already covered in tests/exporter/test_spool.py and not repeated here: a spool path that is a
file where a directory is expected, and the spool directory removed while running.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmdrdata_exporter import CmdrDataSpanExporter, span_to_event
from tests.servers.cmdrdata_server import TEST_API_KEY
from tests.span_maker import usage_spans

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("mount") is None,
    reason="needs Linux mount(8) for a real tmpfs",
)

FAST = {
    "timeout": 0.5,
    "_backoff_base": 0.01,
    "_backoff_cap": 0.2,
    "_poll_interval": 0.05,
    "shutdown_timeout": 2.0,
}


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs of our own (room for the spool and its WAL); unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    point = tmp_path / "tmpfs"
    point.mkdir()
    done = _mount("-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(point))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=30)


def fill(directory: Path) -> int:
    """Write zeros into ``directory`` until its filesystem says ENOSPC; returns bytes written."""
    written = 0
    chunk = b"\0" * 4096
    with open(directory / "filler", "wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
    # Also the last partial block, so not even a small write fits.
    with open(directory / "filler-tail", "wb", buffering=0) as f:
        try:
            while True:
                written += f.write(b"\0")
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return written


def make_spans(n: int) -> list:
    # ~1 KB of customer metadata per event, so a few hundred events need real disk space
    return usage_spans(n, cmdrdata__metadata__note="x" * 1000)


def ids_of(spans, exporter) -> set[str]:
    return {span_to_event(s, exporter.settings)["metadata"]["event_id"] for s in spans}


def errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.fixture
def exporters() -> Iterator[list[CmdrDataSpanExporter]]:
    made: list[CmdrDataSpanExporter] = []
    yield made
    for exporter in made:
        exporter.shutdown(timeout_millis=500)


def new_exporter(made, server, spool: Path, **overrides) -> CmdrDataSpanExporter:
    exporter = CmdrDataSpanExporter(
        api_key=TEST_API_KEY, endpoint=server.url, spool_dir=spool, **{**FAST, **overrides}
    )
    made.append(exporter)
    return exporter


def test_disk_fills_up_while_running(
    tmpfs, cmdrdata_server, exporters, caplog, instrument, make_openai_client
):
    caplog.set_level(logging.DEBUG, logger="cmdrdata_exporter")
    cmdrdata_server.stop()  # cmdrdata is away: events pile up in the spool file
    exporter = new_exporter(exporters, cmdrdata_server, tmpfs / "spool")
    before = make_spans(5)
    assert exporter.export(before).name == "SUCCESS"
    assert exporter.status()["spool"].startswith(str(tmpfs))
    assert exporter.status()["queued"] == 5

    assert fill(tmpfs) > 0
    after = make_spans(200)
    assert exporter.export(after).name == "SUCCESS"  # the app never sees the disk error
    # Real instrumented calls keep working and are billed too.
    client = make_openai_client("sync")
    for _ in range(3):
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content
    exporter.force_flush(200)  # bill the calls now (the direct intake is asynchronous)

    status = exporter.status()
    assert status["spool"] == "memory"
    [error] = errors(caplog)
    message = error.getMessage()
    assert error.name.startswith("cmdrdata_exporter")
    assert "disk is full" in message or "No space left" in message, message
    assert "memory" in message and str(tmpfs) in message
    assert TEST_API_KEY not in message

    cmdrdata_server.start()
    expected = ids_of(before + after, exporter)
    assert cmdrdata_server.wait_for(len(expected) + 3, 15), exporter.status()
    received = cmdrdata_server.event_ids()
    assert expected <= set(received)  # the 5 rescued from the full file and the 200 new
    assert len(received) == len(set(received)) == 208
    assert cmdrdata_server.duplicates == 0
    assert len(errors(caplog)) == 1  # still one line after all that


def test_disk_already_full_at_start(tmpfs, cmdrdata_server, exporters, caplog):
    caplog.set_level(logging.DEBUG, logger="cmdrdata_exporter")
    fill(tmpfs)
    exporter = new_exporter(exporters, cmdrdata_server, tmpfs / "spool")
    spans = make_spans(20)
    assert exporter.export(spans).name == "SUCCESS"
    assert cmdrdata_server.wait_for(20, 10)
    assert set(cmdrdata_server.event_ids()) == ids_of(spans, exporter)
    [error] = errors(caplog)
    message = error.getMessage()
    assert "cannot open the spool" in message and "memory" in message
    assert "disk is full" in message or "No space left" in message, message
    assert exporter.status()["spool"] == "memory"


def test_read_only_spool_keeps_its_events_for_later(tmpfs, cmdrdata_server, exporters, caplog):
    """A spool dir on a filesystem mounted read-only (root ignores chmod, not ``ro``)."""
    caplog.set_level(logging.DEBUG, logger="cmdrdata_exporter")
    spool = tmpfs / "spool"
    cmdrdata_server.stop()
    first = new_exporter(exporters, cmdrdata_server, spool, shutdown_timeout=0.2)
    stranded = make_spans(3)
    first.export(stranded)
    first.shutdown()  # the three stay in the file
    assert not errors(caplog)
    done = _mount("-o", "remount,ro", str(tmpfs))
    if done.returncode != 0:
        pytest.skip(f"cannot remount read-only: {done.stderr.strip()}")
    cmdrdata_server.start()

    exporter = new_exporter(exporters, cmdrdata_server, spool)
    spans = make_spans(10)
    assert exporter.export(spans).name == "SUCCESS"
    assert cmdrdata_server.wait_for(10, 10)
    assert set(cmdrdata_server.event_ids()) == ids_of(spans, exporter)
    [error] = errors(caplog)
    assert "memory" in error.getMessage() and str(spool) in error.getMessage()
    assert exporter.status()["spool"] == "memory"
    exporter.shutdown(timeout_millis=500)

    # The file was never touched: once the disk is writable again, the next process
    # delivers the events stranded in it.
    assert _mount("-o", "remount,rw", str(tmpfs)).returncode == 0
    later = new_exporter(exporters, cmdrdata_server, spool)
    deadline = time.monotonic() + 10
    while later.status()["queued"] and time.monotonic() < deadline:
        later.force_flush(1000)
    assert cmdrdata_server.wait_for(13, 5)
    assert ids_of(stranded, later) <= set(cmdrdata_server.event_ids())
    assert cmdrdata_server.duplicates == 0
