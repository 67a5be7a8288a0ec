"""The outbox between ``export()`` and the sender.

``SqliteSpool`` makes events durable before ``export()`` returns, so a crash, restart or outage
loses nothing: the next process using the same directory delivers them. Several processes may
share one file; a row is *leased* to one sender at a time, and a lease left by a dead process
expires. ``MemorySpool`` has the same interface, bounded, for ``CMDRDATA_SPOOL=memory`` and as
the fallback when the disk fails. ``ResilientSpool`` does that switch, once, with one ERROR line.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cmdrdata_exporter.diagnostics import Drops

logger = logging.getLogger("cmdrdata_exporter.spool")
T = TypeVar("T")

MEMORY_CAP = 100_000
REPLY_LIMIT = 2048
_BUSY_TIMEOUT_MS = 10_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY, body TEXT NOT NULL, created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL DEFAULT 0,
    lease_owner TEXT, lease_until REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS events_due ON events (next_attempt);
CREATE TABLE IF NOT EXISTS rejected (
    event_id TEXT PRIMARY KEY, body TEXT NOT NULL, status INTEGER, reply TEXT, at REAL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
"""


@dataclass(frozen=True)
class Claimed:
    event_id: str
    body: str
    attempts: int


@dataclass
class Outcome:
    """What one delivery round did; applied to the spool in one transaction."""

    delivered: list[str] = field(default_factory=list)
    retry: list[tuple[str, float]] = field(default_factory=list)  # (event_id, next_attempt)
    rejected: list[tuple[Claimed, int, str]] = field(default_factory=list)  # status, reply
    released: list[str] = field(default_factory=list)  # not attempted: lease given back
    last_error: str | None = None
    paused: str | None = None  # "auth" / "endpoint" while the key or endpoint is refused


def health(meta: dict[str, Any]) -> dict[str, Any]:
    """The last error, when it happened, whether a delivery since has cleared it, a pause."""
    last_error, error_at = meta.get("last_error"), meta.get("last_error_at")
    success_at, paused = meta.get("last_success_at"), meta.get("paused")
    return {
        "last_error": last_error,
        "last_error_at": error_at,
        "last_success_at": success_at,
        "last_error_cleared": bool(last_error and success_at and success_at > (error_at or 0)),
        "paused": paused,
    }


class Spool(Protocol):
    description: str

    def put(self, rows: list[tuple[str, str]], delay: float = 0.0) -> int: ...
    def discard(self, event_ids: list[str]) -> int: ...
    def claim(
        self, owner: str, limit: int, lease: float, ignore_timers: bool = False
    ) -> list[Claimed]: ...
    def settle(self, owner: str, outcome: Outcome) -> None: ...
    def pending(self) -> int: ...
    def in_flight(self, owner: str) -> int: ...
    def stats(self, rejection_limit: int = 100) -> dict[str, Any]: ...
    def requeue(self, status: int | None = None) -> int: ...
    def queue_state(self) -> tuple[int, float | None]: ...
    def release_owner(self, owner: str) -> None: ...
    def close(self) -> None: ...


def _age(since: float | None) -> float | None:
    return None if since is None else round(max(0.0, time.time() - since), 3)


def _health_changes(outcome: Outcome, now: float) -> list[tuple[str, Any]]:
    """The meta rows a round changes: its error and when, its success, a refusal's pause."""
    changes: list[tuple[str, Any]] = []
    if outcome.last_error is not None:
        changes += [("last_error", outcome.last_error), ("last_error_at", now)]
    if outcome.delivered:
        changes.append(("last_success_at", now))
    if outcome.paused is not None:
        changes.append(("paused", outcome.paused))
    return changes


def _full_warning(drops: Drops, kind: str, cap: int, where: str, n: int) -> None:
    drops.count(
        kind,
        f"the spool {where} holds its maximum of {cap} events; new events are dropped "
        "and counted until the sender catches up",
        n,
    )


_WARNED_DIRS: set[str] = set()


def _private_dir(directory: Path) -> None:
    """Create the spool dir 0700 whatever the umask; warn once if an existing one is shared."""
    if not directory.exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            directory.mkdir(mode=0o700)
            os.chmod(directory, 0o700)  # the umask may have taken bits from mkdir's mode
            return
        except FileExistsError:
            pass  # another process made it a moment ago
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o066 and str(directory) not in _WARNED_DIRS:
        _WARNED_DIRS.add(str(directory))
        logger.warning(
            "the spool dir %s can be read or written by other users (mode %04o); it holds "
            "customer ids and usage: consider `chmod 700` on it",
            directory,
            mode,
        )


def _private_file(path: Path) -> None:
    """Create ``path`` 0600 if it does not exist (never loosen or tighten someone's file)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class SqliteSpool:
    """One SQLite file in WAL mode; one connection per process, guarded by a lock."""

    def __init__(self, directory: Path, max_events: int, drops: Drops):
        self.path = Path(directory) / "spool.sqlite3"
        self.description = str(self.path)
        self._max = max_events
        self._drops = drops
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        _private_dir(self.path.parent)
        _private_file(self.path)  # SQLite gives its -wal and -shm files the same mode
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_MS / 1e3
        )
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        # Prove we can write here now, not at the first export.
        with self._txn(conn):
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('delivered', 0)")
        return conn

    def after_fork(self) -> None:
        """In a forked child: a lock another thread held at the fork would never be released."""
        self._lock = threading.RLock()

    def _c(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked: the parent's connection is not ours to use
            self._pid = os.getpid()
            self._lock = threading.RLock()
            self._conn = self._open()
        return self._conn

    class _txn:
        """BEGIN IMMEDIATE ... COMMIT, so claims by several processes never overlap."""

        def __init__(self, conn: sqlite3.Connection):
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type, *_exc) -> None:
            if exc_type is None:
                self.conn.execute("COMMIT")
            elif self.conn.in_transaction:
                self.conn.execute("ROLLBACK")

    def check_present(self) -> None:
        """Raise when the file was removed under us (SQLite would write into the void)."""
        if not self.path.exists():
            raise FileNotFoundError(f"spool file {self.path} was removed")

    def put(self, rows: list[tuple[str, str]], delay: float = 0.0) -> int:
        """Store new events (an id already there is kept as it is); ``delay`` seconds before
        the first attempt (a foreign span's event waits in case its call's own span comes)."""
        now = time.time()
        with self._lock:
            conn = self._c()
            self.check_present()
            with self._txn(conn):
                room = self._room(conn, len(rows))
                if room < len(rows):
                    _full_warning(
                        self._drops, "spool_full", self._max, str(self.path), len(rows) - room
                    )
                    rows = rows[:room]
                before = conn.total_changes
                conn.executemany(
                    "INSERT OR IGNORE INTO events (event_id, body, created, next_attempt) "
                    "VALUES (?, ?, ?, ?)",
                    [(eid, body, now, now + delay) for eid, body in rows],
                )
                return conn.total_changes - before

    def discard(self, event_ids: list[str]) -> int:
        """Remove queued events that turned out to bill a call twice; returns how many."""
        with self._lock:
            conn = self._c()
            with self._txn(conn):
                before = conn.total_changes
                conn.executemany("DELETE FROM events WHERE event_id = ?", [(e,) for e in event_ids])
                return conn.total_changes - before

    def _room(self, conn: sqlite3.Connection, wanted: int) -> int:
        # max-min rowid bounds the count from above in two index seeks; count exactly only
        # when that bound says we may be near the cap.
        # (Two statements: SQLite answers a lone min() or max() from the index, not both.)
        (lo,) = conn.execute("SELECT min(rowid) FROM events").fetchone()
        (hi,) = conn.execute("SELECT max(rowid) FROM events").fetchone()
        if lo is None:  # empty: one batch larger than the cap must still be capped
            return min(wanted, self._max)
        if hi - lo + 1 + wanted <= self._max:
            return wanted
        (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
        return max(0, min(wanted, self._max - count))

    def claim(
        self, owner: str, limit: int, lease: float, ignore_timers: bool = False
    ) -> list[Claimed]:
        with self._lock:
            conn = self._c()
            with self._txn(conn):
                # Read the clock only once we hold the write lock: a stale "now" would give
                # our lease less time than the caller was promised.
                now = time.time()
                due = math.inf if ignore_timers else now
                rows = conn.execute(
                    "UPDATE events SET lease_owner = ?, lease_until = ? WHERE rowid IN "
                    "(SELECT rowid FROM events WHERE lease_until < ? AND next_attempt <= ? "
                    "ORDER BY next_attempt LIMIT ?) RETURNING event_id, body, attempts",
                    (owner, now + lease, now, due, limit),
                ).fetchall()
        return [Claimed(*row) for row in rows]

    def settle(self, owner: str, outcome: Outcome) -> None:
        now = time.time()
        with self._lock:
            conn = self._c()
            with self._txn(conn):
                if outcome.delivered:
                    conn.executemany(
                        "DELETE FROM events WHERE event_id = ?", [(e,) for e in outcome.delivered]
                    )
                    conn.execute(
                        "UPDATE meta SET value = value + ? WHERE key = 'delivered'",
                        (len(outcome.delivered),),
                    )
                conn.executemany(
                    "UPDATE events SET attempts = attempts + 1, next_attempt = ?, "
                    "lease_owner = NULL, lease_until = 0 WHERE event_id = ? AND lease_owner = ?",
                    [(at, eid, owner) for eid, at in outcome.retry],
                )
                conn.executemany(
                    "UPDATE events SET lease_owner = NULL, lease_until = 0 "
                    "WHERE event_id = ? AND lease_owner = ?",
                    [(eid, owner) for eid in outcome.released],
                )
                for claimed, status, reply in outcome.rejected:
                    conn.execute(
                        "INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?, ?)",
                        (claimed.event_id, claimed.body, status, reply[:REPLY_LIMIT], now),
                    )
                    conn.execute("DELETE FROM events WHERE event_id = ?", (claimed.event_id,))
                conn.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", _health_changes(outcome, now)
                )
                if outcome.paused is None and (outcome.delivered or outcome.rejected):
                    conn.execute("DELETE FROM meta WHERE key = 'paused'")

    def release_owner(self, owner: str) -> None:
        with self._lock:
            self._c().execute(
                "UPDATE events SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = ?",
                (owner,),
            )

    def pending(self) -> int:
        with self._lock:
            return self._c().execute("SELECT count(*) FROM events").fetchone()[0]

    def in_flight(self, owner: str) -> int:
        """Rows ``owner`` holds a live lease on (being sent by another thread of ours)."""
        with self._lock:
            return (
                self._c()
                .execute(
                    "SELECT count(*) FROM events WHERE lease_owner = ? AND lease_until >= ?",
                    (owner, time.time()),
                )
                .fetchone()[0]
            )

    def stats(self, rejection_limit: int = 100) -> dict[str, Any]:
        with self._lock:
            conn = self._c()
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            rejected = conn.execute("SELECT count(*) FROM rejected").fetchone()[0]
            rejections = conn.execute(
                "SELECT event_id, status, reply, at FROM rejected ORDER BY at DESC LIMIT ?",
                (rejection_limit,),
            ).fetchall()
            queued, oldest = self.queue_state()
        return {
            "queued": queued,
            "oldest_queued_age_s": _age(oldest),
            "delivered": int(meta.get("delivered", 0)),
            "rejected": rejected,
            "rejections": [
                {"event_id": e, "status": s, "reply": r, "at": a} for e, s, r, a in rejections
            ],
            **health(meta),
            "spool": self.description,
        }

    def queue_state(self) -> tuple[int, float | None]:
        """(events awaiting delivery, when the oldest of them was queued)."""
        with self._lock:
            count, oldest = (
                self._c().execute("SELECT count(*), min(created) FROM events").fetchone()
            )
        return count, oldest

    def requeue(self, status: int | None = None) -> int:
        """Move rejected events (all, or those answered ``status``) back to the queue."""
        where, args = ("WHERE status = ?", (status,)) if status is not None else ("", ())
        now = time.time()
        with self._lock:
            conn = self._c()
            with self._txn(conn):
                conn.execute(
                    "INSERT OR IGNORE INTO events (event_id, body, created, next_attempt) "
                    f"SELECT event_id, body, ?, ? FROM rejected {where}",
                    (now, now, *args),
                )
                return conn.execute(f"DELETE FROM rejected {where}", args).rowcount

    def take_all(self, limit: int) -> list[tuple[str, str]]:
        """Read what is left (for moving it to memory when the disk goes away)."""
        with self._lock:
            return (
                self._c().execute("SELECT event_id, body FROM events LIMIT ?", (limit,)).fetchall()
            )

    def close(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                self._conn.close()


@dataclass(slots=True)
class _Row:
    """One queued event in memory."""

    body: str
    created: float
    next_attempt: float
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: float = 0.0


class MemorySpool:
    """Bounded in-process outbox with the same interface; nothing survives the process."""

    description = "memory"

    def __init__(self, max_events: int, drops: Drops):
        self._max = max_events
        self._drops = drops
        self._lock = threading.Lock()
        self._rows: OrderedDict[str, _Row] = OrderedDict()
        self._delivered = 0
        self._rejected: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._meta: dict[str, Any] = {}

    def put(self, rows: list[tuple[str, str]], delay: float = 0.0) -> int:
        now = time.time()
        added = 0
        with self._lock:
            for eid, body in rows:
                if eid in self._rows:
                    continue
                if len(self._rows) >= self._max:
                    _full_warning(self._drops, "memory_queue_full", self._max, "in memory", 1)
                    continue
                self._rows[eid] = _Row(body, now, now + delay)
                added += 1
        return added

    def discard(self, event_ids: list[str]) -> int:
        with self._lock:
            return sum(self._rows.pop(eid, None) is not None for eid in event_ids)

    def claim(
        self, owner: str, limit: int, lease: float, ignore_timers: bool = False
    ) -> list[Claimed]:
        now = time.time()
        out: list[Claimed] = []
        with self._lock:
            for eid, row in self._rows.items():
                if row.lease_until < now and (ignore_timers or row.next_attempt <= now):
                    row.lease_owner, row.lease_until = owner, now + lease
                    out.append(Claimed(eid, row.body, row.attempts))
                    if len(out) >= limit:
                        break
        return out

    def _leased(self, eid: str, owner: str) -> _Row | None:
        row = self._rows.get(eid)
        return row if row is not None and row.lease_owner == owner else None

    def settle(self, owner: str, outcome: Outcome) -> None:
        now = time.time()
        with self._lock:
            for eid in outcome.delivered:
                if self._rows.pop(eid, None) is not None:
                    self._delivered += 1
            for eid, at in outcome.retry:
                if (row := self._leased(eid, owner)) is not None:
                    row.attempts += 1
                    row.next_attempt, row.lease_owner, row.lease_until = at, None, 0.0
                    self._rows.move_to_end(eid)  # keep due rows at the front
            for eid in outcome.released:
                if (row := self._leased(eid, owner)) is not None:
                    row.lease_owner, row.lease_until = None, 0.0
            for claimed, status, reply in outcome.rejected:
                self._rows.pop(claimed.event_id, None)
                self._rejected[claimed.event_id] = {
                    "event_id": claimed.event_id,
                    "status": status,
                    "reply": reply[:REPLY_LIMIT],
                    "at": now,
                    "body": claimed.body,
                }
                while len(self._rejected) > 10_000:
                    self._rejected.popitem(last=False)
            self._meta.update(_health_changes(outcome, now))
            if outcome.paused is None and (outcome.delivered or outcome.rejected):
                self._meta.pop("paused", None)

    def requeue(self, status: int | None = None) -> int:
        now = time.time()
        with self._lock:
            back = [r for r in self._rejected.values() if status is None or r["status"] == status]
            for r in back:
                del self._rejected[r["event_id"]]
                self._rows.setdefault(r["event_id"], _Row(r["body"], now, now))
        return len(back)

    def queue_state(self) -> tuple[int, float | None]:
        with self._lock:
            oldest = min((r.created for r in self._rows.values()), default=None)
            return len(self._rows), oldest

    def release_owner(self, owner: str) -> None:
        with self._lock:
            for row in self._rows.values():
                if row.lease_owner == owner:
                    row.lease_owner, row.lease_until = None, 0.0

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def in_flight(self, owner: str) -> int:
        now = time.time()
        with self._lock:
            return sum(
                1 for r in self._rows.values() if r.lease_owner == owner and r.lease_until >= now
            )

    def stats(self, rejection_limit: int = 100) -> dict[str, Any]:
        queued, oldest = self.queue_state()
        with self._lock:
            rejections = [
                {k: v for k, v in r.items() if k != "body"} for r in self._rejected.values()
            ]
            return {
                "queued": queued,
                "oldest_queued_age_s": _age(oldest),
                "delivered": self._delivered,
                "rejected": len(self._rejected),
                "rejections": rejections[::-1][:rejection_limit],
                **health(self._meta),
                "spool": self.description,
            }

    def clear_after_fork(self) -> None:
        """The parent still owns these events; the child must not send them again."""
        self._lock = threading.Lock()
        self._rows = OrderedDict()

    def close(self) -> None:
        pass


class ResilientSpool:
    """SQLite when it works; on the first disk failure one ERROR line, then memory for good."""

    def __init__(self, directory: Path | None, max_events: int, drops: Drops):
        self._drops = drops
        self._fail_lock = threading.Lock()
        self.memory = MemorySpool(min(max_events, MEMORY_CAP), drops)
        self.disk: SqliteSpool | None = None
        if directory is not None:
            try:
                self.disk = SqliteSpool(directory, max_events, drops)
            except (sqlite3.Error, OSError) as exc:
                self._fail(None, f"cannot open the spool in {directory}", exc)

    @property
    def active(self) -> Spool:
        return self.disk if self.disk is not None else self.memory

    @property
    def description(self) -> str:
        return self.active.description

    def _fail(self, disk: Any, what: str, exc: BaseException) -> None:
        """Switch to memory once, however many threads hit the failing disk at the same time."""
        with self._fail_lock:
            if self.disk is not disk:
                return  # another thread has already switched (and logged)
            self.disk = None
        logger.error(
            "%s (%s: %s); keeping undelivered events in memory instead (at most %d, lost if "
            "the process exits before they are delivered)",
            what,
            type(exc).__name__,
            exc,
            self.memory._max,
        )
        if disk is None:
            return
        try:  # rescue what the old file still holds (e.g. after its directory was removed)
            self.memory.put(disk.take_all(self.memory._max))
            disk.close()
        except Exception:
            pass

    def _call(self, use: Callable[[Spool], T]) -> T:
        """``use`` on the disk spool; on a disk failure, switch and use the memory one."""
        disk = self.disk
        if disk is not None:
            try:
                return use(disk)
            except (sqlite3.Error, OSError) as exc:
                self._fail(disk, f"cannot use the spool {disk.description}", exc)
        return use(self.memory)

    def put(self, rows: list[tuple[str, str]], delay: float = 0.0) -> int:
        return self._call(lambda s: s.put(rows, delay))

    def discard(self, event_ids: list[str]) -> int:
        return self._call(lambda s: s.discard(event_ids))

    def claim(
        self, owner: str, limit: int, lease: float, ignore_timers: bool = False
    ) -> list[Claimed]:
        return self._call(lambda s: s.claim(owner, limit, lease, ignore_timers))

    def settle(self, owner: str, outcome: Outcome) -> None:
        self._call(lambda s: s.settle(owner, outcome))

    def release_owner(self, owner: str) -> None:
        self._call(lambda s: s.release_owner(owner))

    def pending(self) -> int:
        return self._call(lambda s: s.pending())

    def in_flight(self, owner: str) -> int:
        return self._call(lambda s: s.in_flight(owner))

    def stats(self, rejection_limit: int = 100) -> dict[str, Any]:
        return self._call(lambda s: s.stats(rejection_limit))

    def requeue(self, status: int | None = None) -> int:
        return self._call(lambda s: s.requeue(status))

    def queue_state(self) -> tuple[int, float | None]:
        return self._call(lambda s: s.queue_state())

    def after_fork(self) -> None:
        self._fail_lock = threading.Lock()
        if self.disk is not None:
            self.disk.after_fork()
        self.memory.clear_after_fork()

    def close(self) -> None:
        self._call(lambda s: s.close())
