"""SPEC section 7: the spool holds customer ids and usage, so only its owner may read it."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmdrdata_exporter.diagnostics import Drops
from cmdrdata_exporter.spool import SqliteSpool


@pytest.fixture
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_spool_dir_we_create_is_private(usual_umask, make_exporter, make_spans, tmp_path):
    spool_dir = tmp_path / "cache" / "spool"
    exporter = make_exporter(_poll_interval=60, spool_dir=spool_dir)
    exporter.export(make_spans(5))  # writes: the -wal and -shm journal files now exist
    files = sorted(p.name for p in spool_dir.iterdir())
    assert files == ["spool.sqlite3", "spool.sqlite3-shm", "spool.sqlite3-wal"]
    assert _mode(spool_dir) == 0o700
    assert {name: _mode(spool_dir / name) for name in files} == dict.fromkeys(files, 0o600)
    assert _mode(spool_dir.parent) == 0o755  # parents as the umask says: not ours alone


def test_only_a_shared_existing_spool_dir_gets_a_warning(usual_umask, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="cmdrdata_exporter")
    private, shared = tmp_path / "private", tmp_path / "shared"
    private.mkdir(mode=0o700)
    shared.mkdir(mode=0o755)
    SqliteSpool(private, 100, Drops()).close()
    for _ in range(2):
        SqliteSpool(shared, 100, Drops()).close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(shared) in warnings[0] and "0755" in warnings[0]
    assert _mode(shared) == 0o755  # not ours to change
    assert _mode(shared / "spool.sqlite3") == 0o600  # the file we created is
