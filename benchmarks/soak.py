"""Soak: a steady rate of instrumented calls against a cmdrdata that fails ~10% of requests.

Two processes. The *worker* is the application: a real OpenAI SDK client (on an in-process
``httpx2.MockTransport``, so no provider server is involved) instrumented by
``CmdrDataInstrumentor``, a ``TracerProvider`` with ``BatchSpanProcessor(CmdrDataSpanExporter())``
configured from ``CMDRDATA_*`` with the exporter's default timers, making ``--rate`` calls per
second for ``--seconds``, one in five streamed. It samples its own RSS (``VmRSS``) every
``--sample`` seconds, writes each call's event id to a file (nothing kept in memory), then waits
until the exporter has delivered everything. The *driver* (this process) runs the fake cmdrdata
with random faults (503, dropped connections, 429 with ``Retry-After: 1``; optionally responses
slower than the exporter's timeout) and checks at the end that every call's event arrived
exactly once by event id.

    python benchmarks/soak.py                       # 300 s (or $CMDRDATA_SOAK_SECONDS)
    python benchmarks/soak.py --seconds 20 --rate 50 --json /tmp/soak.json
    pytest -m soak tests/test_kill_and_soak.py      # the same, as a test (5 minutes)

Prints a JSON summary: calls, requests, faults injected by kind, events lost, duplicates
(re-sends of an event the server had already accepted; the server deduplicates them by
``Idempotency-Key``), peak RSS, RSS growth after warm-up and its slope, delivery lag.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_SECONDS = float(os.environ.get("CMDRDATA_SOAK_SECONDS", "300"))
# Share of cmdrdata requests that fail, and how the failures are split.
FAULT_MIX = (("503", 0.6), ("drop", 0.3), ("429", 0.1))


# -- the driver's fake cmdrdata ----------------------------------------------------------


def faulty_server(fault_rate: float, slow_rate: float, slow_seconds: float, seed: int):
    """A ``CmdrDataServer`` that injects a random fault into ``fault_rate`` of requests."""
    from tests.servers.cmdrdata_server import EVENTS_PATH, CmdrDataServer

    class FaultyCmdrData(CmdrDataServer):
        def __init__(self) -> None:
            super().__init__()
            self._rng = random.Random(seed)
            self._rng_lock = threading.Lock()
            self.faults: dict[str, int] = {"503": 0, "drop": 0, "429": 0, "slow": 0}

        def _decide(self, received, handler):
            if received.path == EVENTS_PATH:
                with self._rng_lock:
                    roll = self._rng.random()
                    pick = self._rng.random()
                if roll < fault_rate:
                    kind = FAULT_MIX[-1][0]
                    for name, share in FAULT_MIX:
                        if pick < share:
                            kind = name
                            break
                        pick -= share
                    changes = {"503": "fail_next", "drop": "drop_next", "429": "rate_limit_next"}
                    with self._lock:  # consumed by the base class's next decision
                        name = changes[kind]
                        setattr(self.mode, name, getattr(self.mode, name) + 1)
                        self.faults[kind] += 1
                elif roll < fault_rate + slow_rate:
                    with self._lock:
                        self.mode.hang_next += 1
                        self.mode.hang_seconds = slow_seconds
                        self.faults["slow"] += 1
            return super()._decide(received, handler)

    server = FaultyCmdrData()
    server.mode.retry_after = "1"
    return server


def drive(
    seconds: float = DEFAULT_SECONDS,
    rate: float = 75.0,
    fault_rate: float = 0.10,
    slow_rate: float = 0.0,
    sample: float = 5.0,
    drain_timeout: float = 180.0,
    seed: int = 1,
) -> dict[str, Any]:
    """Run one soak and return its summary (see the module docstring)."""
    from tests.servers.cmdrdata_server import TEST_API_KEY

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cmdrdata-soak-") as tmp:
        ids_file = Path(tmp) / "event-ids.txt"
        report_file = Path(tmp) / "worker.json"
        server = faulty_server(fault_rate, slow_rate, slow_seconds=7.0, seed=seed).start()
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("CMDRDATA_")}
            env.update(
                CMDRDATA_API_KEY=TEST_API_KEY,
                CMDRDATA_ENDPOINT=server.url,
                CMDRDATA_SPOOL_DIR=str(Path(tmp) / "spool"),
                PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            )
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                f"--seconds={seconds}",
                f"--rate={rate}",
                f"--sample={sample}",
                f"--drain-timeout={drain_timeout}",
                f"--ids-file={ids_file}",
                f"--json={report_file}",
            ]
            timeout = seconds + drain_timeout + 120
            proc = subprocess.run(cmd, env=env, cwd=ROOT, timeout=timeout, capture_output=True)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"soak worker exited with {proc.returncode}: {proc.stderr.decode()[-4000:]}"
                )
            worker = json.loads(report_file.read_text())
            sent = ids_file.read_text().split()
        finally:
            server.stop()
        received = server.event_ids()
        statuses: dict[str, int] = {}
        for request in server.requests:
            key = "dropped" if request.status is None else str(request.status)
            statuses[key] = statuses.get(key, 0) + 1
    sent_set, received_set = set(sent), set(received)
    summary = {
        "seconds": seconds,
        "rate": rate,
        "calls": worker["calls"],
        "event_ids": len(sent),
        "distinct_event_ids": len(sent_set),
        "events_received": len(received),
        "events_lost": len(sent_set - received_set),
        "unexpected_events": len(received_set - sent_set),
        "events_recorded_twice": len(received) - len(received_set),
        "duplicates": server.duplicates,
        "requests": len(server.requests),
        "faults_injected": dict(server.faults),
        "faults_total": sum(server.faults.values()),
        "statuses": statuses,
        "wall_seconds": round(time.monotonic() - started, 1),
        **{k: v for k, v in worker.items() if k != "calls"},
    }
    return summary


# -- the worker: the instrumented application ----------------------------------------------


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0  # pragma: no cover


def _slope_kb_per_min(points: list[tuple[float, int]]) -> float:
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mr = sum(r for _, r in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mt) * (r - mr) for t, r in points) / var * 60


def work(args: argparse.Namespace) -> None:
    import httpx2
    import openai
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from cmdrdata_exporter import CmdrDataSpanExporter
    from cmdrdata_exporter.events import event_id_for
    from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor, customer_context
    from opentelemetry_instrumentation_cmdrdata.semconv import SCOPE_NAME

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import canned

    ids_out = open(args.ids_file, "w")  # noqa: SIM115 (closed below)

    class RecordEventIds(SpanProcessor):
        """Writes the event id each call's span will bill under (nothing kept in memory)."""

        def on_end(self, span) -> None:
            scope = span.instrumentation_scope
            if scope is not None and scope.name == SCOPE_NAME:
                ids_out.write(event_id_for(span.context.trace_id, span.context.span_id) + "\n")

    provider = TracerProvider(resource=Resource.create({"service.name": "soak"}))
    provider.add_span_processor(RecordEventIds())
    exporter = CmdrDataSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=provider)

    def client(chunks: int) -> openai.OpenAI:
        return openai.OpenAI(
            api_key="sk-soak",
            base_url="http://openai.soak.invalid/v1",
            max_retries=0,
            http_client=httpx2.Client(transport=canned.openai_transport(chunks)),
        )

    plain, streamed = client(0), client(8)
    messages = [{"role": "user", "content": "hello"}]
    samples: list[dict[str, Any]] = []
    start = time.monotonic()
    next_sample = start
    calls = late = 0
    while True:
        now = time.monotonic()
        if now >= next_sample:
            status = exporter.status()
            samples.append(
                {
                    "t": round(now - start, 1),
                    "rss_kb": _rss_kb(),
                    "calls": calls,
                    "queued": status["queued"],
                    "delivered": status["delivered"],
                }
            )
            next_sample += args.sample
        if now - start >= args.seconds:
            break
        due = start + calls / args.rate
        if due > now:
            time.sleep(due - now)
        elif now - due > 1.0:
            late += 1
        with customer_context(f"cust-{calls % 50}", plan="soak"):
            if calls % 5 == 4:
                for _ in streamed.chat.completions.create(
                    model=canned.OPENAI_MODEL, messages=messages, stream=True
                ):
                    pass
            else:
                plain.chat.completions.create(model=canned.OPENAI_MODEL, messages=messages)
        calls += 1
    load_seconds = time.monotonic() - start
    rss_at_load_end = _rss_kb()

    # The load stops; the exporter keeps delivering (with faults) until nothing is left.
    provider.force_flush()
    drain_start = time.monotonic()
    while time.monotonic() - drain_start < args.drain_timeout:
        exporter.force_flush(5000)
        status = exporter.status()
        if status["queued"] == 0 and status["buffered"] == 0:
            break
        time.sleep(0.2)
    drain_seconds = time.monotonic() - drain_start
    final = exporter.status()
    ids_out.close()

    warm = [s for s in samples if s["t"] >= min(30.0, args.seconds / 5)]
    points = [(s["t"], s["rss_kb"]) for s in warm]
    report = {
        "calls": calls,
        "calls_late_by_over_1s": late,
        "load_seconds": round(load_seconds, 1),
        "achieved_rate": round(calls / load_seconds, 1),
        "drain_seconds": round(drain_seconds, 1),
        "left_in_spool": final["queued"],
        "rejected": final["rejected"],
        "dropped": final["dropped"],
        "max_queued": max((s["queued"] for s in samples), default=0),
        "rss_start_kb": samples[0]["rss_kb"] if samples else 0,
        "rss_warm_kb": warm[0]["rss_kb"] if warm else 0,
        "rss_end_kb": rss_at_load_end,
        "rss_peak_kb": max([rss_at_load_end] + [s["rss_kb"] for s in samples]),
        "rss_growth_after_warmup_kb": rss_at_load_end - warm[0]["rss_kb"] if warm else 0,
        "rss_slope_kb_per_min": round(_slope_kb_per_min(points), 1),
        "samples": samples,
    }
    instrumentor.uninstrument()
    provider.shutdown()
    with open(args.json, "w") as f:
        json.dump(report, f)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--rate", type=float, default=75.0, help="calls per second")
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument(
        "--slow-rate", type=float, default=0.0, help="share of responses past the timeout"
    )
    parser.add_argument("--sample", type=float, default=5.0, help="RSS sampling period (s)")
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the summary here (the worker: its report)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ids-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        work(args)
        return
    summary = drive(
        args.seconds,
        args.rate,
        args.fault_rate,
        args.slow_rate,
        args.sample,
        args.drain_timeout,
        args.seed,
    )
    text = json.dumps(summary, indent=2)
    if args.json:
        Path(args.json).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
