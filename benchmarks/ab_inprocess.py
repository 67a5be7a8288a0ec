#!/usr/bin/env python
"""Per-call overhead, none / floor / cmdrdata, interleaved in ONE process.

    python benchmarks/ab_inprocess.py [--rounds 21] [--calls 300] [--out FILE] [--cost]

``bench_overhead.py`` runs every mode in a fresh process, as an app would, with the anchors in
their own venvs. Two processes of the same code can differ by tens of µs per call on this VM
(memory layout, hash seeds), which shows up there as wide [min..max] ranges. Here the three
modes share one process, one TracerProvider (SimpleSpanProcessor, counting exporter) and one
heap: each round times a batch of calls per mode, in rotating order, and ``cmdrdata`` is
``instrument()``-ed just for its batch (with a client built after it) and ``uninstrument()``-ed
after. Overhead = mode median - ``none`` median of the same round; the table gives the median
over rounds and [min..max]. Clock: process CPU time per call.

``--cost`` adds ``cmdrdata-nocost`` (instrumented with ``CMDRDATA_COST=false``) to the same rounds,
so the price of pricing (``cmdrdata`` - ``cmdrdata-nocost``) is measured within each round.
``--billing batch|simple`` also puts a ``CmdrDataSpanExporter`` on the provider (in that span
processor; no API key, so it spools into a temp dir and never sends), which switches on the
direct billing hand-over of every call: its per-call cost then shows in ``cmdrdata``. Run it
with ``PYTHONPATH=<a copy of the packages>`` to compare two versions. ``--clock thread`` counts
only the calling thread's CPU time: what the application's thread pays, without the exporter's
background threads (whose work lands in random calls and widens the ranges).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_overhead as bench  # noqa: E402

MODES = ("none", "floor", "cmdrdata")
LABELS = {
    "openai": "OpenAI `chat.completions.create`",
    "anthropic": "Anthropic `messages.create`",
    "gemini": "Gemini `models.generate_content`",
}


CLOCKS = {"process": time.process_time_ns, "thread": time.thread_time_ns}


def _median_call_us(call: Any, calls: int, warmup: int, clock: Any) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(calls):
        start = clock()
        call()
        times.append(clock() - start)
    return statistics.median(times) / 1000


def _instrumented(instrumentor: Any, provider: Any, mode: str) -> None:
    """instrument(), with cost off for ``cmdrdata-nocost`` (it is read at instrument time)."""
    before = os.environ.get("CMDRDATA_COST")
    if mode == "cmdrdata-nocost":
        os.environ["CMDRDATA_COST"] = "false"
    try:
        instrumentor.instrument(tracer_provider=provider)
    finally:
        if before is None:
            os.environ.pop("CMDRDATA_COST", None)
        else:
            os.environ["CMDRDATA_COST"] = before


def _wait_for_prices() -> None:
    """Let the bundled prices load before timing: the loader thread's CPU would count."""
    try:
        from opentelemetry_instrumentation_cmdrdata import pricing
    except ImportError:  # a package from before cost existed
        return
    pricing.bundled_prices().wait(120)


def _add_billing(provider: Any, processor: str) -> None:
    """A keyless CmdrDataSpanExporter: events go to a temp spool and stay there."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    from cmdrdata_exporter import CmdrDataSpanExporter

    os.environ.pop("CMDRDATA_API_KEY", None)
    exporter = CmdrDataSpanExporter(spool_dir=tempfile.mkdtemp(prefix="cmdrdata-ab-"))
    wrap = BatchSpanProcessor if processor == "batch" else SimpleSpanProcessor
    provider.add_span_processor(wrap(exporter))


def measure(
    scenario: str,
    rounds: int,
    calls: int,
    warmup: int,
    billing: str = "none",
    clock: Any = time.process_time_ns,
    modes: tuple[str, ...] = MODES,
) -> dict[str, list[float]]:
    """Per round, each mode's median per-call CPU µs."""
    from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor

    _wait_for_prices()
    provider, _exporter = bench._make_provider("simple")
    if billing != "none":
        _add_billing(provider, billing)
    tracer = provider.get_tracer("benchmarks.floor")
    spec = tuple(bench.SCENARIOS[scenario])
    instrumentor = CmdrDataInstrumentor()
    fixed = {mode: bench._build_call(mode, spec, tracer) for mode in ("none", "floor")}
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for r in range(rounds):
        shift = r % len(modes)
        order = modes[shift:] + modes[:shift]
        for mode in order:
            if mode.startswith("cmdrdata"):
                _instrumented(instrumentor, provider, mode)
                try:
                    call = bench._build_call("cmdrdata", spec, tracer)
                    times[mode].append(_median_call_us(call, calls, warmup, clock))
                finally:
                    instrumentor.uninstrument()
            else:
                times[mode].append(_median_call_us(fixed[mode], calls, warmup, clock))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--scenarios", default="openai,anthropic,gemini")
    parser.add_argument("--billing", choices=("none", "batch", "simple"), default="none")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="process")
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    parser.add_argument(
        "--cost", action="store_true", help="also cmdrdata with CMDRDATA_COST=false, same rounds"
    )
    args = parser.parse_args()
    if args.cost:
        return cost_main(args)

    lines = [
        "| scenario | none (µs/call) | floor overhead [min..max] | cmdrdata overhead [min..max] "
        "| cmdrdata vs floor |",
        "|---|---:|---:|---:|---:|",
    ]
    for scenario in args.scenarios.split(","):
        times = measure(
            scenario, args.rounds, args.calls, args.warmup, args.billing, CLOCKS[args.clock]
        )
        over = {
            mode: [m - n for m, n in zip(times[mode], times["none"], strict=True)]
            for mode in ("floor", "cmdrdata")
        }
        med = {mode: statistics.median(values) for mode, values in over.items()}
        cell = {
            mode: f"+{med[mode]:.1f} µs [{min(values):+.1f}..{max(values):+.1f}]"
            for mode, values in over.items()
        }
        lines.append(
            f"| {LABELS[scenario]} | {statistics.median(times['none']):.1f} | {cell['floor']} "
            f"| {cell['cmdrdata']} | {med['cmdrdata'] / med['floor']:.2f}× |"
        )
        print(lines[-1], flush=True)
    header = [
        "# Per-call overhead, all modes in one process",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; package measured: "
        f"{bench._package_note()}",
        f"- Command: `python benchmarks/ab_inprocess.py {' '.join(sys.argv[1:])}`",
        f"- {args.rounds} interleaved rounds of {args.calls} calls per mode (+{args.warmup} "
        "warm-up), SimpleSpanProcessor and a counting exporter"
        + ("" if args.billing == "none" else f", a keyless CmdrDataSpanExporter ({args.billing})")
        + f", {args.clock} CPU time per call; "
        "overhead = mode median - `none` median of the same round, median over rounds "
        "[min..max]. Same SDK versions as `results.md`.",
    ]
    table = "\n".join([*header, "", *lines, ""])
    print()
    print(table)
    if args.out:
        args.out.write_text(table)


def cost_main(args: argparse.Namespace) -> None:
    """cmdrdata with and without pricing, interleaved in the same rounds."""
    modes = ("none", "cmdrdata", "cmdrdata-nocost")
    lines = [
        "| scenario | none (µs/call) | cmdrdata, cost off [min..max] "
        "| cmdrdata, cost on [min..max] | pricing: on - off, per round [min..max] |",
        "|---|---:|---:|---:|---:|",
    ]
    for scenario in args.scenarios.split(","):
        times = measure(scenario, args.rounds, args.calls, args.warmup, modes=modes)
        none = times["none"]
        off = [m - n for m, n in zip(times["cmdrdata-nocost"], none, strict=True)]
        on = [m - n for m, n in zip(times["cmdrdata"], none, strict=True)]
        diff = [a - b for a, b in zip(on, off, strict=True)]

        def cell(values: list[float]) -> str:
            return f"{statistics.median(values):+.1f} µs [{min(values):+.1f}..{max(values):+.1f}]"

        lines.append(
            f"| {LABELS[scenario]} | {statistics.median(none):.1f} | {cell(off)} | {cell(on)} "
            f"| {cell(diff)} |"
        )
        print(lines[-1], flush=True)
    header = [
        "# The price of pricing: per-call overhead with and without cost, one process",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; package measured: "
        f"{bench._package_note()}",
        f"- Command: `python benchmarks/ab_inprocess.py {' '.join(sys.argv[1:])}`",
        f"- {args.rounds} interleaved rounds of {args.calls} calls per mode (+{args.warmup} "
        "warm-up), SimpleSpanProcessor and a counting exporter, process CPU time per call. "
        "`cost off` is `CMDRDATA_COST=false`; `cost on` prices each call from genai-prices' "
        "bundled data (loaded before timing). Overheads are against `none` in the same round; "
        "the last column is on - off within each round, median [min..max] over rounds.",
    ]
    table = "\n".join([*header, "", *lines, ""])
    print()
    print(table)
    if args.out:
        args.out.write_text(table)


if __name__ == "__main__":
    main()
