"""``cmdrdata-exporter status | flush | check``: look at and drain the spool from a shell.

It reads the same ``CMDRDATA_*`` environment as the exporter, so run it with the environment
of the application whose spool you mean.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from typing import Any, TextIO

from cmdrdata_exporter.config import Settings, mask_key, resolve
from cmdrdata_exporter.diagnostics import Drops
from cmdrdata_exporter.sender import Delivery, suppressed
from cmdrdata_exporter.spool import SqliteSpool

_PROGRESS_MIN = 200  # backlogs smaller than this finish before a bar is worth drawing


def _open_spool(settings: Settings) -> SqliteSpool | None:
    """The spool if one exists; status never creates one as a side effect."""
    if settings.spool != "sqlite" or not settings.spool_path.exists():
        return None
    return SqliteSpool(settings.spool_dir, settings.max_spool_events, Drops())


def _status(settings: Settings, as_json: bool, out: TextIO) -> int:
    spool = _open_spool(settings)
    if spool is None:
        where = (
            "memory (nothing persists between processes)"
            if settings.spool == "memory"
            else (f"{settings.spool_path} (not created yet)")
        )
        info: dict[str, Any] = {"queued": 0, "delivered": 0, "rejected": 0, "rejections": []}
        info.update(last_error=None, spool=where)
    else:
        info = spool.stats(rejection_limit=1000)
        spool.close()
    info["problems"] = [p.message for p in settings.problems]
    if as_json:
        json.dump(info, out, indent=2)
        out.write("\n")
        return 0
    out.write(f"queued     {info['queued']}\n")
    out.write(f"delivered  {info['delivered']}\n")
    out.write(f"rejected   {info['rejected']}\n")
    for r in info["rejections"]:
        out.write(f"  {r['event_id']}  HTTP {r['status']}  {r['reply']}\n")
    if info["rejected"] > len(info["rejections"]):
        out.write(f"  ... and {info['rejected'] - len(info['rejections'])} more\n")
    out.write(f"last error {info['last_error'] or '-'}\n")
    out.write(f"spool      {info['spool']}\n")
    for problem in info["problems"]:
        out.write(f"problem    {problem}\n")
    return 0


class _Progress:
    """A one-line bar on stderr, redrawn at most ten times a second."""

    def __init__(self, total: int, err: TextIO):
        self.total, self.err, self.last = total, err, 0.0
        self.enabled = total >= _PROGRESS_MIN

    def show(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < 0.1):
            return
        self.last = now
        filled = 30 * min(done, self.total) // max(self.total, 1)
        self.err.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total}")
        if final:
            self.err.write("\n")
        self.err.flush()


def _flush(settings: Settings, timeout: float, out: TextIO, err: TextIO) -> int:
    if settings.delivery_blocker:
        err.write(f"cannot deliver: {settings.delivery_blocker}\n")
        return 2
    if settings.spool != "sqlite":
        err.write("CMDRDATA_SPOOL=memory: there is no spool on disk to flush\n")
        return 0
    spool = _open_spool(settings)
    if spool is None:
        out.write("nothing queued\n")
        return 0
    before = spool.stats(rejection_limit=0)
    progress = _Progress(before["queued"], err)
    delivery = Delivery(settings, spool, Drops())
    deadline = time.monotonic() + timeout
    done = 0
    try:
        with suppressed():
            while time.monotonic() < deadline:
                claimed, settled = delivery.run_round(deadline, ignore_timers=True)
                done += settled
                progress.show(done)
                if claimed == 0 or settled == 0:
                    break
    finally:
        progress.show(done, final=True)
        delivery.close()
        after = spool.stats(rejection_limit=0)
        spool.close()
    delivered = after["delivered"] - before["delivered"]
    rejected = after["rejected"] - before["rejected"]
    out.write(f"delivered {delivered}, rejected {rejected}, still queued {after['queued']}\n")
    if after["queued"] and after["last_error"]:
        err.write(f"last error: {after['last_error']}\n")
    return 0 if after["queued"] == 0 and rejected == 0 else 1


def _check(settings: Settings, out: TextIO) -> int:
    problems = [p.message for p in settings.problems]
    key = mask_key(settings.api_key) if settings.api_key else "problem"
    out.write(f"api key    {key}\n")
    out.write(f"endpoint   {settings.endpoint}\n")
    if settings.spool == "sqlite":
        try:
            SqliteSpool(settings.spool_dir, settings.max_spool_events, Drops()).close()
            out.write(f"spool      {settings.spool_path} (writable)\n")
        except Exception as exc:
            problems.append(f"spool dir {settings.spool_dir} is not writable ({exc})")
    else:
        out.write("spool      memory\n")
    for problem in problems:
        out.write(f"problem    {problem}\n")
    out.write("ok\n" if not problems else f"{len(problems)} problem(s)\n")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cmdrdata-exporter",
        description="Inspect and deliver the cmdrdata exporter's spool (reads CMDRDATA_*).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="queued, delivered and rejected events")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    flush = commands.add_parser("flush", help="deliver everything queued now")
    flush.add_argument("--timeout", type=float, default=300.0, help="give up after N seconds")
    commands.add_parser("check", help="validate the key, endpoint and spool dir")
    serve = commands.add_parser(
        "serve",
        help="receive OTLP/HTTP traces from other services and bill their GenAI spans",
        description="An OTLP/HTTP receiver (POST /v1/traces, protobuf or JSON, gzip) for "
        "services in any language and for OpenTelemetry Collectors. It bills the GenAI spans "
        "it receives (whatever CMDRDATA_SPAN_SOURCE says) through the spool in "
        "CMDRDATA_SPOOL_DIR and answers 200 only once they are durable. GET /healthz for "
        "probes; SIGTERM stops it cleanly. Needs the [serve] extra.",
    )
    from cmdrdata_exporter import serve as serve_module

    serve_module.add_arguments(serve)
    args = parser.parse_args(argv)
    if args.command == "flush" and not (args.timeout > 0 and math.isfinite(args.timeout)):
        parser.error("--timeout must be a positive number of seconds")

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    settings = resolve({}, os.environ)
    out, err = sys.stdout, sys.stderr
    if args.command == "status":
        return _status(settings, args.json, out)
    if args.command == "flush":
        return _flush(settings, args.timeout, out, err)
    if args.command == "serve":
        return serve_module.run(args)
    return _check(settings, out)


if __name__ == "__main__":
    sys.exit(main())
