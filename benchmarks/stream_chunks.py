#!/usr/bin/env python
"""Per-chunk cost of instrumenting a Gemini stream, in ONE process, without the SDK's parsing.

    python benchmarks/stream_chunks.py [--rounds 15] [--streams 20]
    PYTHONPATH=/path/to/other/copy python benchmarks/stream_chunks.py   # another package copy

The SDK's own per-chunk cost here (SSE decoding, JSON, pydantic: about 200 µs a chunk on
the 2-core VM) is a hundred times what an instrumentation adds, so ``bench_overhead.py``'s
per-chunk figure for Gemini is mostly noise. Here the SDK's per-request stream method
(``Models._generate_content_stream``) is replaced, before anything is instrumented, by a
generator over already-parsed chunks; everything above it is real: the public
``generate_content_stream``, its continuation generator, and whatever each mode adds.
Modes, interleaved round-robin: ``none``, ``floor`` (``floor.gemini_generate_stream``) and
``cmdrdata`` (instrumented for its batch only). Per chunk = (overhead on a 500-chunk stream
- overhead on a 50-chunk stream) / 450, overhead = mode - ``none`` in the same round;
process CPU time; medians over rounds [min..max].
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_overhead as bench  # noqa: E402
import canned  # noqa: E402
import floor  # noqa: E402

MODES = ("none", "floor", "cmdrdata")
SIZES = (50, 500)


def _parsed_chunks(count: int) -> list[Any]:
    from google.genai import types

    out = []
    for part in canned.gemini_stream_body(count).split(b"\n\n"):
        if not part.startswith(b"data: "):
            continue
        data = json.loads(part[len(b"data: ") :])
        out.append(types.GenerateContentResponse._from_response(response=data, kwargs={}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--streams", type=int, default=20, help="streams per mode and round")
    args = parser.parse_args()

    from google import genai
    from google.genai import models

    streams = {size: _parsed_chunks(size) for size in SIZES}
    current = {"size": SIZES[0]}

    def canned_stream(self: Any, *, model: str, contents: Any, config: Any = None) -> Any:
        yield from streams[current["size"]]

    models.Models._generate_content_stream = canned_stream  # before instrument() wraps it

    import opentelemetry_instrumentation_cmdrdata as package
    from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor

    provider, exporter = bench._make_provider("simple")
    tracer = provider.get_tracer("benchmarks.floor")
    client = genai.Client(api_key="bench-key")
    kwargs = {"model": canned.GEMINI_MODEL, "contents": "hi", "config": {"temperature": 0.2}}
    instrumentor = CmdrDataInstrumentor()

    def consume(stream: Any) -> None:
        for _chunk in stream:
            pass

    calls = {
        "none": lambda: consume(client.models.generate_content_stream(**kwargs)),
        "floor": lambda: consume(floor.gemini_generate_stream(tracer, client, **kwargs)),
        "cmdrdata": lambda: consume(client.models.generate_content_stream(**kwargs)),
    }
    clock = time.process_time_ns
    times: dict[tuple[str, int], list[float]] = {(m, s): [] for m in MODES for s in SIZES}
    spans = {mode: 0 for mode in MODES}
    for r in range(args.rounds):
        order = MODES[r % 3 :] + MODES[: r % 3]
        for mode in order:
            if mode == "cmdrdata":
                instrumentor.instrument(tracer_provider=provider, providers=["google_genai"])
            exported = exporter.count
            for size in SIZES:
                current["size"] = size
                calls[mode]()  # warm-up
                start = clock()
                for _ in range(args.streams):
                    calls[mode]()
                times[(mode, size)].append((clock() - start) / args.streams / 1000)
            spans[mode] += exporter.count - exported
            if mode == "cmdrdata":
                instrumentor.uninstrument()

    print(f"package: {Path(package.__file__).parent}")
    print(f"{args.rounds} rounds x {args.streams} streams per mode and size; CPU µs")
    per_mode = args.rounds * len(SIZES) * (args.streams + 1)
    print("spans per stream: " + ", ".join(f"{m} {spans[m] / per_mode:g}" for m in MODES))
    for mode in MODES:
        per_chunk = []
        per_call50 = []
        for r in range(args.rounds):
            o50 = times[(mode, 50)][r] - times[("none", 50)][r]
            o500 = times[(mode, 500)][r] - times[("none", 500)][r]
            per_chunk.append((o500 - o50) / 450)
            per_call50.append(o50)
        if mode == "none":
            sdk = [
                (times[("none", 500)][r] - times[("none", 50)][r]) / 450 for r in range(args.rounds)
            ]
            print(f"none: the SDK's generators alone {statistics.median(sdk):.2f} µs per chunk")
            continue
        print(
            f"{mode}: 50-chunk stream +{statistics.median(per_call50):.1f} µs "
            f"[{min(per_call50):+.1f}..{max(per_call50):+.1f}]; per chunk "
            f"{statistics.median(per_chunk):.2f} µs [{min(per_chunk):.2f}..{max(per_chunk):.2f}]"
        )


if __name__ == "__main__":
    main()
