#!/usr/bin/env python
"""Our overhead per call and per Gemini chunk, in ONE process, with the SDK's I/O stubbed out.

    python benchmarks/stubbed_overhead.py [--rounds 15] [--calls 300] [--streams 20]
    PYTHONPATH=/path/to/other/copy python benchmarks/stubbed_overhead.py   # another copy

On a busy shared VM the end-to-end benchmarks spread by hundreds of µs per call, and the
Gemini SDK spends about 200 µs per streamed chunk (SSE, JSON, pydantic): differences of a
few µs between two versions of the instrumentor do not show there. Here the method each
instrumentation wraps innermost is replaced, before anything is instrumented, by a stub that
returns an already-parsed response (``chat.completions.create``, ``messages.create``, Gemini's
per-request ``Models._generate_content``) or a generator over already-parsed chunks
(``Models._generate_content_stream``); everything above it is real (Gemini's public
``generate_content`` and its stream generators included). ``none`` and ``cmdrdata`` (only
``instrument()``-ed for its batch) are interleaved in one process; overhead = cmdrdata - none
in the same round, process CPU time, medians over rounds [min..max]. Per chunk = (overhead on
a 500-chunk stream - overhead on a 50-chunk stream) / 450.
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


def _gemini_chunks(count: int) -> list[Any]:
    from google.genai import types

    out = []
    for part in canned.gemini_stream_body(count).split(b"\n\n"):
        if part.startswith(b"data: "):
            data = json.loads(part[len(b"data: ") :])
            out.append(types.GenerateContentResponse._from_response(response=data, kwargs={}))
    return out


def _stub_sdks(stream_size: dict[str, int], tracer: Any) -> dict[str, dict[str, Any]]:
    """Replace the innermost wrapped methods by stubs; returns each mode's calls to time."""
    import anthropic
    import openai
    from anthropic.resources.messages import messages as anthropic_messages
    from anthropic.types import Message
    from google import genai
    from google.genai import models, types
    from openai.resources.chat.completions import completions as openai_chat
    from openai.types.chat import ChatCompletion

    chat = ChatCompletion.model_validate_json(canned.openai_chat_body())
    message = Message.model_validate_json(canned.anthropic_message_body())
    generated = types.GenerateContentResponse._from_response(
        response=json.loads(canned.gemini_generate_body()), kwargs={}
    )
    chunks = {size: _gemini_chunks(size) for size in SIZES}

    openai_chat.Completions.create = lambda self, **kwargs: chat
    anthropic_messages.Messages.create = lambda self, **kwargs: message
    models.Models._generate_content = lambda self, **kwargs: generated

    def canned_stream(self: Any, **kwargs: Any) -> Any:
        yield from chunks[stream_size["n"]]

    models.Models._generate_content_stream = canned_stream

    oai = openai.OpenAI(api_key="sk-bench", base_url="https://api.openai.com/v1")
    ant = anthropic.Anthropic(api_key="sk-ant-bench", base_url="https://api.anthropic.com")
    gem = genai.Client(api_key="bench-key")
    chat_kwargs = {
        "model": canned.OPENAI_MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 256,
    }
    message_kwargs = {**chat_kwargs, "model": canned.ANTHROPIC_MODEL}
    gemini_kwargs = {
        "model": canned.GEMINI_MODEL,
        "contents": "hi",
        "config": {"max_output_tokens": 256, "temperature": 0.2},
    }

    def consume(stream: Any) -> None:
        for _chunk in stream:
            pass

    sdk = {
        "openai": lambda: oai.chat.completions.create(**chat_kwargs),
        "anthropic": lambda: ant.messages.create(**message_kwargs),
        "gemini": lambda: gem.models.generate_content(**gemini_kwargs),
        "gemini-stream": lambda: consume(gem.models.generate_content_stream(**gemini_kwargs)),
    }
    by_floor = {
        "openai": lambda: floor.openai_chat(tracer, oai, **chat_kwargs),
        "anthropic": lambda: floor.anthropic_messages(tracer, ant, **message_kwargs),
        "gemini": lambda: floor.gemini_generate(tracer, gem, **gemini_kwargs),
        "gemini-stream": lambda: consume(
            floor.gemini_generate_stream(tracer, gem, **gemini_kwargs)
        ),
    }
    return {"none": sdk, "floor": by_floor, "cmdrdata": sdk}


def _median_us(call: Any, number: int) -> float:
    clock = time.process_time_ns
    call()  # warm-up
    start = clock()
    for _ in range(number):
        call()
    return (clock() - start) / number / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=300, help="plain calls per mode and round")
    parser.add_argument("--streams", type=int, default=20, help="streams per mode, size, round")
    args = parser.parse_args()

    provider, exporter = bench._make_provider("simple")
    stream_size = {"n": SIZES[0]}
    calls = _stub_sdks(stream_size, provider.get_tracer("benchmarks.floor"))

    import opentelemetry_instrumentation_cmdrdata as package
    from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor

    instrumentor = CmdrDataInstrumentor()
    cases = ["openai", "anthropic", "gemini", "gemini-stream50", "gemini-stream500"]
    times: dict[tuple[str, str], list[float]] = {(m, c): [] for m in MODES for c in cases}
    spans = 0
    for r in range(args.rounds):
        for mode in MODES[r % 3 :] + MODES[: r % 3]:
            if mode == "cmdrdata":
                instrumentor.instrument(tracer_provider=provider)
                exported = exporter.count
            for case in cases:
                if case.startswith("gemini-stream"):
                    stream_size["n"] = int(case[len("gemini-stream") :])
                    value = _median_us(calls[mode]["gemini-stream"], args.streams)
                else:
                    value = _median_us(calls[mode][case], args.calls)
                times[(mode, case)].append(value)
            if mode == "cmdrdata":
                spans += exporter.count - exported
                instrumentor.uninstrument()

    expected = args.rounds * (3 * (args.calls + 1) + 2 * (args.streams + 1))
    print(f"package: {Path(package.__file__).parent}; spans {spans} of {expected} calls")
    print(f"{args.rounds} rounds; CPU µs per call; overhead = mode - none, median [min..max]")

    def overheads(mode: str, case: str) -> list[float]:
        return [m - n for m, n in zip(times[(mode, case)], times[("none", case)], strict=True)]

    def shown(values: list[float], digits: int = 1) -> str:
        return (
            f"{statistics.median(values):+.{digits}f} "
            f"[{min(values):+.{digits}f}..{max(values):+.{digits}f}]"
        )

    for case in cases:
        base = statistics.median(times[("none", case)])
        print(
            f"{case:17s} none {base:8.1f}   floor {shown(overheads('floor', case)):26s}"
            f" cmdrdata {shown(overheads('cmdrdata', case))}"
        )
    for mode in ("floor", "cmdrdata"):
        per_chunk = [
            (o500 - o50) / 450
            for o50, o500 in zip(
                overheads(mode, "gemini-stream50"), overheads(mode, "gemini-stream500"), strict=True
            )
        ]
        print(f"gemini per chunk, {mode}: {shown(per_chunk, 2)} µs")


if __name__ == "__main__":
    main()
