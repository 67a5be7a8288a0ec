"""The outbox: durable, deduplicating, bounded, leased, and falling back to memory."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time

from cmdrdata_exporter.diagnostics import Drops
from cmdrdata_exporter.spool import Outcome, SqliteSpool


def _rows(n, prefix="e"):
    return [(f"{prefix}{i}", '{"x":1}') for i in range(n)]


def test_sqlite_spool_is_wal_and_deduplicates(tmp_path):
    spool = SqliteSpool(tmp_path / "a" / "b", 100, Drops())
    assert spool.put(_rows(5)) == 5
    assert spool.put(_rows(5)) == 0
    conn = sqlite3.connect(spool.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 5
    spool.close()


def test_leases_keep_two_senders_apart_and_expire(tmp_path):
    a = SqliteSpool(tmp_path, 100, Drops())
    b = SqliteSpool(tmp_path, 100, Drops())
    a.put(_rows(10))
    first = a.claim("A", 6, lease=0.2)
    second = b.claim("B", 10, lease=0.2)
    assert len(first) == 6 and len(second) == 4
    assert not {c.event_id for c in first} & {c.event_id for c in second}
    assert b.claim("B", 10, lease=0.2) == []
    time.sleep(0.25)  # A "died": its lease runs out
    assert len(b.claim("B", 10, lease=5)) == 10


def test_settle_deletes_retries_rejects_and_releases(tmp_path):
    spool = SqliteSpool(tmp_path, 100, Drops())
    spool.put(_rows(4))
    c = spool.claim("me", 4, lease=30)
    spool.settle(
        "me",
        Outcome(
            delivered=[c[0].event_id],
            retry=[(c[1].event_id, time.time() + 60)],
            rejected=[(c[2], 422, "nope" * 1000)],
            released=[c[3].event_id],
            last_error="HTTP 503",
        ),
    )
    stats = spool.stats()
    assert (stats["queued"], stats["delivered"], stats["rejected"]) == (2, 1, 1)
    assert stats["last_error"] == "HTTP 503"
    assert len(stats["rejections"][0]["reply"]) == 2048
    assert [x.event_id for x in spool.claim("me", 4, lease=30)] == [c[3].event_id]
    assert [x.event_id for x in spool.claim("me", 4, 30, ignore_timers=True)] == [c[1].event_id]


def test_size_cap_drops_newest_with_one_warning(make_exporter, make_spans, caplog, cmdrdata_server):
    cmdrdata_server.stop()
    caplog.set_level(logging.DEBUG, logger="cmdrdata_exporter")
    exporter = make_exporter(max_spool_events=10)
    exporter.export(make_spans(8))
    exporter.export(make_spans(8))
    exporter.export(make_spans(3))
    status = exporter.status()
    assert status["queued"] == 10 and status["dropped"]["spool_full"] == 9
    full = [r for r in caplog.records if "maximum of 10" in r.getMessage()]
    assert len(full) == 1 and full[0].levelno == logging.WARNING


def test_memory_spool_delivers_without_touching_disk(
    make_exporter, make_spans, spool_dir, cmdrdata_server
):
    exporter = make_exporter(spool="memory")
    exporter.export(make_spans(20))
    assert cmdrdata_server.wait_for(20, 5)
    assert not spool_dir.exists()
    assert exporter.status()["spool"] == "memory"


def test_unwritable_spool_dir_falls_back_to_memory(
    make_exporter, make_spans, tmp_path, caplog, cmdrdata_server
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    caplog.set_level(logging.DEBUG, logger="cmdrdata_exporter")
    exporter = make_exporter(spool_dir=blocker / "spool")
    assert exporter.export(make_spans(15)).name == "SUCCESS"
    assert cmdrdata_server.wait_for(15, 5)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "memory" in errors[0].getMessage()
    assert exporter.status()["spool"] == "memory"


def test_spool_dir_removed_while_running(
    make_exporter, make_spans, spool_dir, caplog, cmdrdata_server
):
    cmdrdata_server.stop()
    caplog.set_level(logging.DEBUG, logger="cmdrdata_exporter")
    exporter = make_exporter()
    exporter.export(make_spans(5))
    shutil.rmtree(spool_dir)
    assert exporter.export(make_spans(5)).name == "SUCCESS"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "removed" in errors[0].getMessage()
    cmdrdata_server.start()
    assert cmdrdata_server.wait_for(10, 10)  # the 5 rescued from the old file and the 5 new


def test_memory_stays_flat_with_a_large_backlog(make_exporter, make_spans, cmdrdata_server):
    import tracemalloc

    cmdrdata_server.stop()
    exporter = make_exporter()
    batch = make_spans(250)
    from opentelemetry.sdk.trace import ReadableSpan

    def fresh(i):  # same spans with new ids so each is a new event
        out = []
        for j, s in enumerate(batch):
            ctx = s.context.__class__(
                i * 1000 + j + 1, s.context.span_id, False, s.context.trace_flags
            )
            out.append(
                ReadableSpan(
                    s.name,
                    ctx,
                    attributes=s.attributes,
                    resource=s.resource,
                    start_time=s.start_time,
                    end_time=s.end_time,
                    instrumentation_scope=s.instrumentation_scope,
                )
            )
        return out

    exporter.export(fresh(0))
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(1, 21):
        exporter.export(fresh(i))
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert exporter.status()["queued"] == 21 * 250
    assert grown < 5_000_000
