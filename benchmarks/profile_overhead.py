#!/usr/bin/env python
"""Profile one benchmark mode in process (cProfile), to see where overhead goes.

    python benchmarks/profile_overhead.py --mode cmdrdata --scenario openai
    python benchmarks/profile_overhead.py --mode cmdrdata --scenario openai-stream500 --calls 20

Prints the functions of the instrumentation and of the OpenTelemetry API/SDK
(the code an instrumentation adds), sorted by own time, in µs per call. cProfile
inflates small functions several-fold, so read the ranking and the relative
weights; the absolute cost comes from bench_overhead.py. ``--pyinstrument``
uses the statistical profiler instead, if it is installed.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_overhead as bench  # noqa: E402

INTERESTING = ("opentelemetry", "cmdrdata", "wrapt", "floor.py", "contextvars", "threading")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="cmdrdata")
    parser.add_argument("--scenario", default="openai")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--all", action="store_true", help="do not filter to instrumentation code")
    parser.add_argument("--pyinstrument", action="store_true")
    parser.add_argument("--processor", default="simple")
    args = parser.parse_args()

    scenario = bench.SCENARIOS.get(args.scenario) or bench.CHECK_SCENARIOS[args.scenario]
    provider, _ = bench._make_provider(args.processor)
    bench._instrument(args.mode, provider)
    call = bench._build_call(args.mode, scenario, provider.get_tracer("benchmarks.floor"))
    for _ in range(args.warmup):
        call()

    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0001)
        profiler.start()
        for _ in range(args.calls):
            call()
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        return

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.calls):
        call()
    profile.disable()
    stats = pstats.Stats(profile)
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():
        if not args.all and not any(key in filename for key in INTERESTING):
            continue
        short = filename.split("site-packages/")[-1].replace("/work/main/", "")
        rows.append((tottime, cumtime, ncalls, f"{short}:{line}({func})"))
    rows.sort(reverse=True)
    n = args.calls
    total_own = sum(r[0] for r in rows)
    print(f"mode={args.mode} scenario={args.scenario} calls={n}")
    print(f"own time of listed code: {total_own / n * 1e6:.1f} µs/call (profiled)")
    print(f"{'own µs/call':>12} {'cum µs/call':>12} {'calls/call':>10}  function")
    for tottime, cumtime, ncalls, name in rows[: args.top]:
        print(f"{tottime / n * 1e6:12.2f} {cumtime / n * 1e6:12.2f} {ncalls / n:10.2f}  {name}")


if __name__ == "__main__":
    main()
