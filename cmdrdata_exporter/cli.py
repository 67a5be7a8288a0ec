"""``cmdrdata-exporter status | flush | check | requeue``: the spool, from a shell.

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

from cmdrdata_exporter.config import DEFAULT_ENDPOINT, Settings, display_url, mask_key, resolve
from cmdrdata_exporter.diagnostics import Drops
from cmdrdata_exporter.sender import Delivery, probe, suppressed
from cmdrdata_exporter.spool import SqliteSpool, health

_PROGRESS_MIN = 200  # backlogs smaller than this finish before a bar is worth drawing


def _open_spool(settings: Settings) -> SqliteSpool | None:
    """The spool if one exists; status never creates one as a side effect."""
    if settings.spool != "sqlite" or not settings.spool_path.exists():
        return None
    return SqliteSpool(settings.spool_dir, settings.max_spool_events, Drops())


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)) if at else "?"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _status(
    settings: Settings, as_json: bool, max_age: float | None, out: TextIO, err: TextIO
) -> int:
    spool = _open_spool(settings)
    if spool is None:
        where = (
            "memory (nothing persists between processes)"
            if settings.spool == "memory"
            else (f"{settings.spool_path} (not created yet)")
        )
        info: dict[str, Any] = {"queued": 0, "delivered": 0, "rejected": 0, "rejections": []}
        info["oldest_queued_age_s"] = None
        info.update(health({}), spool=where)
    else:
        info = spool.stats(rejection_limit=1000)
        spool.close()
    info["endpoint"] = display_url(settings.endpoint)
    info["paused"] = settings.blocked_by or info["paused"]
    info["problems"] = [p.message for p in settings.problems]
    alarms = _alarms(info, max_age)
    for alarm in alarms:
        err.write(f"{alarm}\n")
    if as_json:
        json.dump(info, out, indent=2)
        out.write("\n")
        return 1 if alarms else 0
    out.write(f"queued     {info['queued']}\n")
    out.write(f"delivered  {info['delivered']}\n")
    out.write(f"rejected   {info['rejected']}\n")
    if info["oldest_queued_age_s"] is not None:
        out.write(f"oldest     queued {info['oldest_queued_age_s']:.0f} s ago\n")
    for r in info["rejections"]:
        out.write(f"  {r['event_id']}  HTTP {r['status']}  {_one_line(r['reply'] or '')}\n")
    if info["rejected"] > len(info["rejections"]):
        out.write(f"  ... and {info['rejected'] - len(info['rejections'])} more\n")
    out.write(f"endpoint   {info['endpoint']}\n")
    if info["paused"]:
        out.write(f"paused     {_PAUSED[info['paused']]}\n")
    out.write(f"last error {_last_error(info)}\n")
    out.write(f"spool      {info['spool']}\n")
    for problem in info["problems"]:
        out.write(f"problem    {problem}\n")
    # The plain report is for reading: it fails only when asked to be a health check.
    return 1 if alarms and max_age is not None else 0


def _alarms(info: dict[str, Any], max_age: float | None) -> list[str]:
    """What an operator's health check should fail on: a pause, or a backlog too old."""
    alarms = []
    if info["paused"]:
        alarms.append(f"delivery is paused: {_PAUSED[info['paused']]}")
    age = info["oldest_queued_age_s"]
    if max_age is not None and age is not None and age > max_age:
        alarms.append(f"the oldest queued event has waited {age:.0f} s (--max-age {max_age:g})")
    return alarms


_PAUSED = {
    "auth": "cmdrdata refused the API key; events wait until it is accepted",
    "endpoint": "the endpoint is not the events API; events wait until it is fixed",
}


def _last_error(info: dict[str, Any]) -> str:
    if not info["last_error"]:
        return "-"
    text = f"{_one_line(info['last_error'])} (at {_when(info['last_error_at'])}"
    if info["last_error_cleared"]:
        text += f"; cleared: delivered since, last at {_when(info['last_success_at'])}"
    return text + ")"


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


def _check(settings: Settings, offline: bool, out: TextIO) -> int:
    problems = [p.message for p in settings.problems]
    key = mask_key(settings.api_key) if settings.api_key else "problem"
    out.write(f"api key    {key}\n")
    out.write(f"endpoint   {display_url(settings.endpoint)}\n")
    if settings.spool == "sqlite":
        try:
            SqliteSpool(settings.spool_dir, settings.max_spool_events, Drops()).close()
            out.write(f"spool      {settings.spool_path} (writable)\n")
        except Exception as exc:
            problems.append(f"spool dir {settings.spool_dir} is not writable ({exc})")
    else:
        out.write("spool      memory\n")
    if offline:
        out.write("request    not made (--offline): key and endpoint not checked with cmdrdata\n")
    elif settings.delivery_blocker:
        out.write("request    not made: fix the key and endpoint first\n")
    else:
        verdict, problem = _probe_verdict(settings)
        out.write(f"request    POST {{}}: {verdict}\n")
        if problem:
            problems.append(problem)
    for problem in problems:
        out.write(f"problem    {problem}\n")
    out.write("ok\n" if not problems else f"{len(problems)} problem(s)\n")
    return 1 if problems else 0


def _probe_verdict(settings: Settings) -> tuple[str, str | None]:
    """What one request that records nothing says about the key and endpoint."""
    kind, status, reply = probe(settings)
    url = display_url(settings.endpoint)
    if kind == "unreachable":
        return "no answer", f"cannot reach the endpoint {url} ({reply})"
    answer = f"HTTP {status} {_one_line(reply)[:120]}".rstrip()
    if kind in ("rejected", "delivered"):
        return f"{answer} (key accepted)", None
    if kind == "auth":
        return answer, f"cmdrdata rejected the API key (HTTP {status} from {url})"
    if kind == "endpoint":
        return answer, (
            f"wrong endpoint: {url} answered HTTP {status}, it is not cmdrdata's events API "
            f"(the default is {DEFAULT_ENDPOINT})"
        )
    return answer, f"the endpoint {url} is unavailable now (HTTP {status}); try again later"


def _requeue(settings: Settings, status: int | None, out: TextIO) -> int:
    spool = _open_spool(settings) if settings.spool == "sqlite" else None
    moved = 0
    if spool is not None:
        try:
            moved = spool.requeue(status)
        finally:
            spool.close()
    which = "rejected" if status is None else f"rejected with HTTP {status}"
    out.write(f"requeued {moved} event(s) {which}\n")
    if moved:
        out.write("they go out with the next delivery (or now: cmdrdata-exporter flush)\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cmdrdata-exporter",
        description="Inspect and deliver the cmdrdata exporter's spool (reads CMDRDATA_*).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser(
        "status", help="queued, delivered and rejected events, the endpoint, the last error"
    )
    status.add_argument(
        "--json",
        action="store_true",
        help="one JSON object; exit non-zero when delivery is paused (for health checks)",
    )
    status.add_argument(
        "--max-age",
        type=float,
        metavar="SECONDS",
        help="exit non-zero when delivery is paused or the oldest queued event is older",
    )
    flush = commands.add_parser(
        "flush", help="deliver what is queued now, ignoring retry timers and pauses"
    )
    flush.add_argument("--timeout", type=float, default=300.0, help="give up after N seconds")
    check = commands.add_parser(
        "check",
        help="validate the key, endpoint and spool dir, with one request that records nothing",
    )
    check.add_argument(
        "--offline", action="store_true", help="check formats and the spool dir only, no request"
    )
    requeue = commands.add_parser("requeue", help="move rejected events back to the queue")
    requeue.add_argument(
        "--status", type=int, metavar="CODE", help="only those rejected with this HTTP status"
    )
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
    if args.command == "status" and args.max_age is not None and not args.max_age >= 0:
        parser.error("--max-age must be a number of seconds")

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    settings = resolve({}, os.environ)
    out, err = sys.stdout, sys.stderr
    if args.command == "status":
        return _status(settings, args.json, args.max_age, out, err)
    if args.command == "flush":
        return _flush(settings, args.timeout, out, err)
    if args.command == "requeue":
        return _requeue(settings, args.status, out)
    if args.command == "serve":
        return serve_module.run(args)
    return _check(settings, args.offline, out)


if __name__ == "__main__":
    sys.exit(main())
