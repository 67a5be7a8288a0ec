#!/usr/bin/env python
"""Where our per-call and per-chunk time goes, with the SDK taken out of the picture.

    python benchmarks/micro_overhead.py [--repeat 7] [--number 20000]

The end-to-end benchmark (bench_overhead.py) measures overhead as a small
difference between two ~1 ms numbers on a noisy machine. Here the SDK call is
replaced by a stub that returns an already-parsed OpenAI response (or yields
already-parsed chunks), so only instrumentation code is timed and the numbers
are stable to a few percent. Each line is the median of ``--repeat`` timeit
runs, in µs per call (or per chunk), measured in this one process with a real
SDK TracerProvider + SimpleSpanProcessor + counting exporter, as in
bench_overhead.py. The steps are the pieces of our wrapper in the order they
run; their sum is not exactly the total (timeit loops add a little each).
``--billing batch|simple`` adds a keyless CmdrDataSpanExporter, as in ab_inprocess.py, so the
direct billing hand-over runs in every call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import timeit
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ab_inprocess  # noqa: E402
import bench_overhead as bench  # noqa: E402
import canned  # noqa: E402

_NAME: list[str] = []


def _median_us(stmt: Any, number: int, repeat: int, per: int = 1) -> tuple:
    """Deferred: measured later, interleaved with every other row (see _run)."""
    return (None, stmt, number, per)


def _run(rows: list[tuple], repeat: int) -> dict[str, float]:
    """Round-robin: each repeat times every row once, so all rows see the same load."""
    times: dict[int, list[float]] = {}
    for _ in range(repeat):
        for i, (_name, fn, number, per) in enumerate(rows):
            if number:
                t = timeit.timeit(fn, number=number)
                times.setdefault(i, []).append(t / number / per * 1e6)
    out = {}
    for i, (name, _fn, number, _per) in enumerate(rows):
        if not number:
            print(name)
            continue
        value = statistics.median(times[i])
        out[name] = value
        print(f"{value:9.2f} µs  {name}  [{min(times[i]):.2f}..{max(times[i]):.2f}]", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--json", help="write the numbers here too")
    parser.add_argument("--billing", choices=("none", "batch", "simple"), default="none")
    args = parser.parse_args()
    n, rep = args.number, args.repeat

    import floor
    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionChunk
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    import opentelemetry_instrumentation_cmdrdata as pkg
    from opentelemetry_instrumentation_cmdrdata import calls, customer
    from opentelemetry_instrumentation_cmdrdata.invocation import Invocation
    from opentelemetry_instrumentation_cmdrdata.raw_response import record_value
    from opentelemetry_instrumentation_cmdrdata.streams import SyncStreamWrapper

    provider, _exporter = bench._make_provider("simple")
    if args.billing != "none":
        ab_inprocess._add_billing(provider, args.billing)
    instrumentor = pkg.CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    tracer = provider.get_tracer("benchmarks.floor")
    telemetry = instrumentor._telemetry

    from openai.resources.chat.completions import completions as chat_module

    wrapper = vars(chat_module.Completions)["create"]
    handler = wrapper._self_wrapper  # our wrapt handler: (wrapped, instance, args, kwargs)
    client = openai.OpenAI(api_key="sk-bench", base_url="https://api.openai.com/v1", max_retries=0)
    instance = client.chat.completions
    hooks = next(h for h in _all_hooks(instrumentor) if h.name == "openai")
    target = next(t for t in hooks.targets() if t.qualname == "Completions.create")

    response = ChatCompletion.model_validate_json(canned.openai_chat_body())
    kwargs = {
        "model": canned.OPENAI_MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 256,
        "temperature": 0.2,
    }

    def stub(*a: Any, **k: Any) -> Any:
        return response

    class FakeClient:
        class chat:
            class completions:
                create = staticmethod(stub)

    results: dict[str, float] = {}
    rows: list[tuple[str, Any, int, int]] = []  # (name, fn, number, per) or a heading

    def row(name: str, value: Any) -> None:
        _, fn, number, per = value
        rows.append((name, fn, number, per))

    rows.append(
        (
            f"# per call (median of {rep} interleaved repeats x {n} calls); SimpleSpanProcessor + counting exporter",
            None,
            0,
            0,
        )
    )
    row(
        "stub alone (the SDK call replaced by `return response`)",
        _median_us(lambda: stub(**kwargs), n, rep),
    )
    row(
        "floor: hand-made span around the stub",
        _median_us(lambda: floor.openai_chat(tracer, FakeClient, **kwargs), n, rep),
    )
    row(
        "cmdrdata: our wrapt handler around the stub",
        _median_us(lambda: handler(stub, instance, (), kwargs), n, rep),
    )
    row(
        "cmdrdata: through wrapt (instance.create -> handler -> stub)",
        _measure_through_wrapt(chat_module, stub, instance, kwargs, n, rep),
    )

    rows.append(("# our steps, in the order they run", None, 0, 0))
    row("take_call_kwargs", _median_us(lambda: calls.take_call_kwargs(kwargs), n, rep))
    scope = calls._SCOPE
    row(
        "_SCOPE.get() + get_current() + suppression check",
        _median_us(lambda: (scope.get(), calls._suppressed(otel_context.get_current())), n, rep),
    )
    row(
        "hooks.request (RequestInfo, request attributes)",
        _median_us(lambda: hooks.request(target, instance, kwargs), n, rep),
    )
    row(
        "customer.split_attribution(current) (no baggage)",
        _median_us(lambda: customer.split_attribution(otel_context.get_current()), n, rep),
    )
    info, _ = hooks.request(target, instance, kwargs)

    def start_and_finish() -> None:
        inv = Invocation(telemetry, target.operation, info, None, {})
        inv.finish()

    row(
        "Invocation() + finish(), no response fields (span start/end/export, metrics)",
        _median_us(start_and_finish, n, rep),
    )

    def start_on_response_finish() -> None:
        inv = Invocation(telemetry, target.operation, info, None, {})
        hooks.on_response(inv, target, response)
        inv.finish()

    row("Invocation() + on_response + finish()", _median_us(start_on_response_finish, n, rep))

    # The same with pricing off (CMDRDATA_COST=false), interleaved: the price of pricing.
    import dataclasses

    from opentelemetry_instrumentation_cmdrdata import pricing

    pricing.bundled_prices().wait(120)  # loaded before timing, as in a running app
    no_cost = dataclasses.replace(telemetry, pricer=None)

    def start_on_response_finish_no_cost() -> None:
        inv = Invocation(no_cost, target.operation, info, None, {})
        hooks.on_response(inv, target, response)
        inv.finish()

    row(
        "Invocation() + on_response + finish(), cost off",
        _median_us(start_on_response_finish_no_cost, n, rep),
    )
    end_attributes = {
        "gen_ai.response.model": response.model,
        "gen_ai.usage.input_tokens": response.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": response.usage.completion_tokens,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 0,
    }
    row(
        "pricing.add_span_cost alone (cached rates: the per-call part)",
        _median_us(
            lambda: pricing.add_span_cost(
                telemetry.pricer, dict(end_attributes), "openai", canned.OPENAI_MODEL, None
            ),
            n,
            rep,
        ),
    )

    inv0 = Invocation(telemetry, target.operation, info, None, {})
    row(
        "hooks.on_response alone",
        _median_us(lambda: hooks.on_response(inv0, target, response), n, rep),
    )
    row("hooks.is_stream alone", _median_us(lambda: hooks.is_stream(response), n, rep))
    row(
        "Invocation._record_metrics alone (no MeterProvider: no-op histograms)",
        _median_us(lambda: inv0._record_metrics(0.001, None), n, rep),
    )
    inv0.finish()
    span = tracer.start_span("x")

    def context_steps() -> None:
        ctx = trace.set_span_in_context(span, otel_context.get_current())
        token = otel_context.attach(ctx)
        t2 = scope.set(None)
        otel_context.detach(token)
        scope.reset(t2)

    row(
        "context: set_span_in_context + attach/detach + _SCOPE set/reset",
        _median_us(context_steps, n, rep),
    )

    def record_value_step() -> None:
        inv = Invocation(telemetry, target.operation, info, None, {})
        record_value(response, inv, hooks, target)

    row(
        "Invocation() + record_value (is_stream, on_response, finish)",
        _median_us(record_value_step, n, rep),
    )

    def floor_span_only() -> None:
        s = tracer.start_span(
            "chat gpt-4o-mini",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "server.address": "api.openai.com",
                "server.port": 443,
                "gen_ai.request.max_tokens": 256,
                "gen_ai.request.temperature": 0.2,
            },
        )
        s.set_attributes(
            {
                "gen_ai.response.model": "m",
                "gen_ai.response.id": "i",
                "gen_ai.response.finish_reasons": ("stop",),
                "gen_ai.usage.input_tokens": 41,
                "gen_ai.usage.output_tokens": 73,
                "gen_ai.usage.cache_read.input_tokens": 16,
                "gen_ai.usage.reasoning.output_tokens": 8,
            }
        )
        s.end()

    row(
        "reference: one SDK span, 14 attributes, start+set+end+export (no context attach)",
        _median_us(floor_span_only, n, rep),
    )

    # ---- per chunk ---------------------------------------------------------------
    chunks = _parsed_chunks(args.chunks, ChatCompletionChunk)
    cn = max(20, n // args.chunks)
    rows.append(
        (
            f"# per chunk ({args.chunks}-chunk stream of already-parsed chunks, x {cn} streams)",
            None,
            0,
            0,
        )
    )

    class ListStream:
        def __init__(self) -> None:
            self._it = iter(chunks)

        def __iter__(self) -> Any:
            return self

        def __next__(self) -> Any:
            return next(self._it)

        def close(self) -> None:
            pass

    per = len(chunks)

    def bare() -> None:
        for _ in ListStream():
            pass

    def ours() -> None:
        inv = Invocation(telemetry, target.operation, stream_info, None, {})
        for _ in SyncStreamWrapper(ListStream(), inv, hooks):
            pass

    def floor_stream() -> None:
        s = tracer.start_span("chat")
        for _ in floor._openai_stream(ListStream(), s, 0):
            pass

    stream_info, _ = hooks.request(
        target, instance, {**kwargs, "stream": True, "stream_options": {"include_usage": True}}
    )
    row("bare iteration of the parsed chunks", _median_us(bare, cn, rep, per))
    row(
        "floor generator, per chunk (incl. its one span / chunks)",
        _median_us(floor_stream, cn, rep, per),
    )
    row(
        "cmdrdata SyncStreamWrapper, per chunk (incl. its one span / chunks)",
        _median_us(ours, cn, rep, per),
    )
    inv1 = Invocation(telemetry, target.operation, stream_info, None, {})
    mid = chunks[len(chunks) // 2]
    row(
        "hooks.on_chunk alone (a content chunk)",
        _median_us(lambda: hooks.on_chunk(inv1, mid), n, rep),
    )
    reader = iter(SyncStreamWrapper(ListStream(), inv1, hooks))
    row("reader._accept alone (a content chunk)", _median_us(lambda: reader._accept(mid), n, rep))
    # ---- probes for the suggested optimisations ---------------------------------------
    import threading

    rows.append(("# probes: costs of single operations on the hot path", None, 0, 0))
    oclient = instance._client
    row(
        "openai 3.x `client.base_url` (property with an import inside)",
        _median_us(lambda: oclient.base_url, n, rep),
    )
    row(
        "`client._base_url` (the attribute behind it)",
        _median_us(lambda: oclient._base_url, n, rep),
    )
    row(
        "getattr(chat_chunk, 'type', None): missing attribute on a pydantic model",
        _median_us(lambda: getattr(mid, "type", None), n, rep),
    )
    chunk_type = type(mid)
    row(
        "type(chat_chunk) is ChatCompletionChunk",
        _median_us(lambda: type(mid) is chunk_type, n, rep),
    )
    row("threading.Lock() (one per Invocation)", _median_us(threading.Lock, n, rep))
    row("span.is_recording()", _median_us(span.is_recording, n, rep))
    attrs7 = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7}
    row("dict(7 attributes) copy", _median_us(lambda: dict(attrs7), n, rep))
    results.update(_run([(name, fn, number, per) for name, fn, number, per in rows], rep))
    inv1.finish()
    bare_us = results["bare iteration of the parsed chunks"]
    print(
        f"{results['cmdrdata SyncStreamWrapper, per chunk (incl. its one span / chunks)'] - bare_us:9.2f} µs  cmdrdata minus bare, per chunk"
    )
    print(
        f"{results['floor generator, per chunk (incl. its one span / chunks)'] - bare_us:9.2f} µs  floor minus bare, per chunk"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def _all_hooks(instrumentor: Any) -> list[Any]:
    from opentelemetry_instrumentation_cmdrdata.providers import available

    return [factory(instrumentor._telemetry) for _, _, factory in available(["openai"])]


def _measure_through_wrapt(
    module: Any, stub: Any, instance: Any, kwargs: dict, n: int, rep: int
) -> float:
    """Call a wrapt.FunctionWrapper built the same way as ours, but around the stub."""
    import wrapt

    handler = vars(module.Completions)["create"]._self_wrapper

    def plain(self: Any, **kw: Any) -> Any:
        return stub(**kw)

    class Holder:
        create = wrapt.FunctionWrapper(plain, handler)

    holder = Holder()
    holder._client = instance._client
    return _median_us(lambda: holder.create(**kwargs), n, rep)


def _parsed_chunks(count: int, chunk_type: Any) -> list[Any]:
    body, _ = canned.openai_stream_bodies(count)
    out = []
    for block in body.split(b"\n\n"):
        if block.startswith(b"data: {"):
            out.append(chunk_type.model_validate_json(block[6:]))
    return out


if __name__ == "__main__":
    main()
