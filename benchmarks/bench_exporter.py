"""Exporter throughput and memory, against the targets of issue #3.

- spans/s through ``export()`` into the SQLite spool (convert + spool), one core: >= 20,000
- events/s delivered to a loopback cmdrdata (a minimal server in its own process): >= 2,000,
  next to a raw ``httpx.Client`` posting the same bodies (the requests' own cost)
- memory growth while a large backlog builds up with cmdrdata unreachable: < 50 MB

Medians over ``--rounds`` rounds. Usage:
    python benchmarks/bench_exporter.py --out benchmarks/results-exporter.md [--backlog 200000]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, TraceFlags

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cmdrdata_exporter import CmdrDataSpanExporter  # noqa: E402
from opentelemetry_instrumentation_cmdrdata import semconv  # noqa: E402
from tests.servers.cmdrdata_server import TEST_API_KEY  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_overhead import git_state  # noqa: E402

SCOPE = InstrumentationScope(semconv.SCOPE_NAME, "0.1.0")
RESOURCE = Resource.create({"service.name": "bench"})
ATTRS = {
    semconv.GEN_AI_OPERATION_NAME: "chat",
    semconv.GEN_AI_PROVIDER_NAME: "openai",
    semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
    semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
    semconv.GEN_AI_RESPONSE_ID: "chatcmpl-bench",
    semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
    semconv.GEN_AI_USAGE_INPUT_TOKENS: 1200,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 300,
    semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1000,
    semconv.CMDRDATA_CUSTOMER_ID: "cust-42",
    "cmdrdata.metadata.plan": "pro",
}


def make_spans(n: int) -> list[ReadableSpan]:
    """Finished spans as the instrumentor makes them, each with fresh ids."""
    trace = random.getrandbits(128)
    now = time.time_ns()
    return [
        ReadableSpan(
            "chat gpt-4o-mini",
            SpanContext(trace, random.getrandbits(64) | 1, False, TraceFlags(1)),
            attributes=ATTRS,
            resource=RESOURCE,
            start_time=now - 800_000_000,
            end_time=now,
            instrumentation_scope=SCOPE,
        )
        for _ in range(n)
    ]


def offline_exporter(spool_dir: str) -> CmdrDataSpanExporter:
    """An exporter whose delivery is paused (no key): export() cost alone."""
    os.environ.pop("CMDRDATA_API_KEY", None)
    os.environ["CMDRDATA_SPOOL_DIR"] = spool_dir
    return CmdrDataSpanExporter(max_spool_events=10_000_000)


def bench_export(rounds: int, n: int) -> tuple[float, float]:
    """(spans per wall second, spans per CPU second): on a shared box the second is the
    one-core figure, the first what this run happened to get."""
    rates, cpu_rates = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            exporter = offline_exporter(tmp)
            batches = [make_spans(512) for _ in range(n // 512)]
            start, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                exporter.export(batch)
            rates.append(len(batches) * 512 / (time.perf_counter() - start))
            cpu_rates.append(len(batches) * 512 / (time.process_time() - cpu))
            exporter.shutdown(timeout_millis=100)
    return statistics.median(rates), statistics.median(cpu_rates)


def start_server(kind: str) -> tuple[subprocess.Popen, str]:
    """``fast``: benchmarks/fast_events_server.py; ``test``: the fault-injecting test server."""
    command = (
        [sys.executable, str(ROOT / "benchmarks/fast_events_server.py"), TEST_API_KEY]
        if kind == "fast"
        else [sys.executable, str(ROOT / "tests/servers/cmdrdata_server.py"), "--no-record"]
    )
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    url = proc.stdout.readline().strip()  # type: ignore[union-attr]
    return proc, url


def bench_raw_client(url: str, bodies: list[bytes]) -> float:
    """Baseline: one ``httpx.Client`` POSTing the same bodies one after another, no spool."""
    import httpx

    headers = {"Authorization": f"Bearer {TEST_API_KEY}", "Content-Type": "application/json"}
    with httpx.Client(headers=headers) as client:
        start = time.perf_counter()
        for i, body in enumerate(bodies):
            client.post(url, content=body, headers={"Idempotency-Key": f"raw-{i}-{start}"})
        return len(bodies) / (time.perf_counter() - start)


def spooled_bodies(spool_dir: str, n: int) -> list[bytes]:
    """The request bodies the exporter would send (read from its SQLite spool)."""
    import sqlite3

    with sqlite3.connect(Path(spool_dir) / "spool.sqlite3") as conn:
        rows = conn.execute("SELECT body FROM events LIMIT ?", (n,)).fetchall()
    return [body.encode() for (body,) in rows]


def bench_delivery(
    rounds: int, n: int, concurrency: int, server_kind: str = "fast"
) -> tuple[float, float]:
    """(events/s delivered by the exporter, requests/s of the raw-client baseline)."""
    server, url = start_server(server_kind)
    rates = []
    baselines = []
    try:
        for _ in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                offline = offline_exporter(tmp)
                for _ in range(n // 512):
                    offline.export(make_spans(512))
                offline.shutdown(timeout_millis=100)
                baselines.append(bench_raw_client(url, spooled_bodies(tmp, 3_000)))
                exporter = CmdrDataSpanExporter(
                    api_key=TEST_API_KEY, endpoint=url, spool_dir=tmp, concurrency=concurrency
                )
                start = time.perf_counter()
                while exporter.status()["queued"]:
                    exporter.force_flush(60_000)
                rates.append((n // 512 * 512) / (time.perf_counter() - start))
                exporter.shutdown()
    finally:
        server.terminate()
        server.wait()
    return statistics.median(rates), statistics.median(baselines)


def bench_memory(backlog: int) -> tuple[float, float]:
    """(peak RSS growth MB, tracemalloc peak MB) while ``backlog`` events pile up."""
    with tempfile.TemporaryDirectory() as tmp:
        exporter = offline_exporter(tmp)
        exporter.export(make_spans(512))  # warm up: imports, SQLite pages, caches
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        tracemalloc.start()
        for _ in range(backlog // 512):
            exporter.export(make_spans(512))
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        queued = exporter.status()["queued"]
        exporter.shutdown(timeout_millis=100)
    print(f"  backlog queued: {queued}", file=sys.stderr)
    return rss_after - rss_before, traced_peak


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--spans", type=int, default=51_200, help="spans per export round")
    parser.add_argument("--events", type=int, default=10_240, help="events per delivery round")
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--server",
        choices=("fast", "test"),
        default="fast",
        help="loopback server for delivery: a minimal asyncio one, or the test server",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.disable(logging.ERROR)  # the "no key" error of the offline exporter is expected

    export_rate, export_cpu_rate = bench_export(args.rounds, args.spans)
    print(f"export: {export_rate:,.0f} spans/s ({export_cpu_rate:,.0f}/CPU-s)", file=sys.stderr)
    delivery_rate, raw_rate = bench_delivery(
        max(1, args.rounds // 2), args.events, args.concurrency, args.server
    )
    print(
        f"delivery: {delivery_rate:,.0f} events/s (raw client {raw_rate:,.0f}/s)", file=sys.stderr
    )
    rss, traced = bench_memory(args.backlog)
    print(f"memory: +{rss:.1f} MB RSS, {traced:.1f} MB traced peak", file=sys.stderr)

    ok = lambda good: "yes" if good else "NO"  # noqa: E731
    report = "\n".join(
        [
            "# Exporter benchmark",
            "",
            f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; git {git_state('cmdrdata_exporter') or 'unknown'}",
            f"- Python {sys.version.split()[0]}, {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f} at the end; httpx {_version('httpx')}, "
            f"opentelemetry-sdk {_version('opentelemetry-sdk')}",
            f"- Medians of {args.rounds} rounds (delivery: {max(1, args.rounds // 2)}). "
            f"Command: `python benchmarks/bench_exporter.py {' '.join(sys.argv[1:])}`",
            "- Delivery baseline, measured in the same rounds against the same server: one "
            "`httpx.Client` POSTing the same event bodies one after another (no spool, no "
            "retries): the cost of the requests alone.",
            "",
            "| Measure | Result | Target | Met |",
            "|---|---|---|---|",
            f"| export() into the SQLite spool | {export_rate:,.0f} spans/s (wall), "
            f"{export_cpu_rate:,.0f} spans per CPU-second | >= 20,000 | "
            f"{ok(export_cpu_rate >= 20_000)} |",
            f"| delivery to a loopback server ({args.server} server, concurrency {args.concurrency}) | "
            f"{delivery_rate:,.0f} events/s | >= 2,000 | {ok(delivery_rate >= 2_000)} |",
            f"| baseline: raw `httpx.Client` POSTs, same bodies and server | "
            f"{raw_rate:,.0f} requests/s | | ratio {delivery_rate / raw_rate:.2f} |",
            f"| peak RSS growth, {args.backlog:,} events backlog, cmdrdata down | {rss:.1f} MB | "
            f"< 50 MB | {ok(rss < 50)} |",
            f"| tracemalloc peak during that backlog | {traced:.1f} MB | | |",
            "",
        ]
    )
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
