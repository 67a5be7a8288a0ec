#!/usr/bin/env python
"""Per-call overhead of the cmdrdata instrumentor, the one-span floor and the anchors.

One command (see benchmarks/README.md)::

    python benchmarks/bench_overhead.py --rounds 5 --out benchmarks/results.md
    python benchmarks/bench_overhead.py --quick          # smoke run, a minute or two

Every measurement runs in a fresh subprocess (this script re-invoking itself
with ``--child``), so modes never share an interpreter, import state or JIT-ish
caches. Rounds are interleaved: in each round every scenario runs every mode
once, the mode order rotating from round to round. Overheads are always taken
against the ``none`` run of the same round and scenario; the table reports the
median over rounds (and min..max), never a single run. Nothing here asserts on
time.

Modes:
  none          uninstrumented SDK; the same TracerProvider and processor are set up
  floor         one hand-made span per call with the same attributes (benchmarks/floor.py)
  cmdrdata      CmdrDataInstrumentor().instrument(tracer_provider=...)
  openllmetry   opentelemetry.instrumentation.openai.OpenAIInstrumentor (OpenAI only)
  openai-v2     opentelemetry.instrumentation.openai_v2.OpenAIInstrumentor (OpenAI only)
  genai-openai  opentelemetry-instrumentation-genai-openai (OpenAI only)
  openllmetry-anthropic  opentelemetry-instrumentation-anthropic, OpenLLMetry (Anthropic only)
  genai-anthropic        opentelemetry-instrumentation-genai-anthropic (Anthropic only)
  openllmetry-gemini     opentelemetry-instrumentation-google-generativeai, OpenLLMetry (Gemini)
  google-genai           opentelemetry-instrumentation-google-genai (Gemini only)

Anchors run with the interpreter of their own venv (``--anchor NAME=PYTHON``);
one that is missing or fails to import is reported as such and skipped.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

CORE_MODES = ("none", "floor", "cmdrdata", "cmdrdata-before")
# ``cmdrdata-before``: the instrumentor from ``--before-path`` (another copy of the package,
# e.g. ``git worktree add /tmp/before <commit>``), measured in the same rounds as ``cmdrdata``.
ANCHOR_MODES = (
    "openllmetry",
    "openai-v2",
    "genai-openai",
    "openllmetry-anthropic",
    "genai-anthropic",
    "openllmetry-gemini",
    "google-genai",
)
DEFAULT_ANCHOR_PYTHONS = {
    "openllmetry": "/tmp/venv-anchors/bin/python",
    "openai-v2": "/tmp/venv-openai-v2/bin/python",
    "genai-openai": "/tmp/venv-genai-openai/bin/python",
    "openllmetry-anthropic": "/tmp/venv-anchors/bin/python",
    "genai-anthropic": "/tmp/venv-genai-anthropic/bin/python",
    "openllmetry-gemini": "/tmp/venv-anchors/bin/python",
    "google-genai": "/tmp/venv-google-genai/bin/python",
}
# The provider whose scenarios each anchor runs (benchmarks/make_anchor_venvs.sh builds them).
ANCHOR_PROVIDER = {
    "openllmetry": "openai",
    "openai-v2": "openai",
    "genai-openai": "openai",
    "openllmetry-anthropic": "anthropic",
    "genai-anthropic": "anthropic",
    "openllmetry-gemini": "gemini",
    "google-genai": "gemini",
}
# mode -> (module, class) for the anchors added with the Anthropic and Gemini scenarios.
ANCHOR_INSTRUMENTORS = {
    "openllmetry-anthropic": ("opentelemetry.instrumentation.anthropic", "AnthropicInstrumentor"),
    "genai-anthropic": ("opentelemetry.instrumentation.genai.anthropic", "AnthropicInstrumentor"),
    "openllmetry-gemini": (
        "opentelemetry.instrumentation.google_generativeai",
        "GoogleGenerativeAiInstrumentor",
    ),
    "google-genai": ("opentelemetry.instrumentation.google_genai", "GoogleGenAiSdkInstrumentor"),
}
# Anchors instrumented with ``skip_dep_check=True``: their declared SDK range excludes the
# installed SDK, and ``instrument()`` would otherwise log a DependencyConflict and do nothing.
# The report says so next to the versions.
SKIP_DEP_CHECK: dict[str, str] = {
    "google-genai": "opentelemetry-instrumentation-google-genai 1.3b0 declares "
    '"google-genai>=1.32.0,<3"; on google-genai 3.x `instrument()` logs a DependencyConflict '
    "and instruments nothing, so it runs here with `skip_dep_check=True`",
}
# scenario -> (provider, stream chunks, include_usage, calls, warm-up)
SCENARIOS: dict[str, tuple[str, int, bool, int, int]] = {
    "openai": ("openai", 0, False, 1000, 200),
    "openai-stream50": ("openai", 50, True, 150, 30),
    "openai-stream500": ("openai", 500, True, 24, 6),
    "anthropic": ("anthropic", 0, False, 1000, 200),
    "gemini": ("gemini", 0, False, 1000, 200),
    "gemini-stream50": ("gemini", 50, True, 150, 30),
    "gemini-stream500": ("gemini", 500, True, 24, 6),
}
# Only for the token-capture check (not timed).
CHECK_SCENARIOS: dict[str, tuple[str, int, bool, int, int]] = {
    "openai-stream50-nousage": ("openai", 50, False, 5, 1),
}
# The token-capture check's scenarios: OpenAI's table, then Anthropic's and Gemini's.
OPENAI_CHECKS = ("openai", "openai-stream50", "openai-stream50-nousage")
OTHER_CHECKS = ("anthropic", "gemini", "gemini-stream50")
DIST_NAMES = (
    "openai",
    "anthropic",
    "google-genai",
    "httpx2",
    "httpx",
    "pydantic",
    "wrapt",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation",
    "opentelemetry-instrumentation-cmdrdata",
    "opentelemetry-instrumentation-openai",
    "opentelemetry-instrumentation-openai-v2",
    "opentelemetry-instrumentation-genai-openai",
    "opentelemetry-instrumentation-anthropic",
    "opentelemetry-instrumentation-genai-anthropic",
    "opentelemetry-instrumentation-google-generativeai",
    "opentelemetry-instrumentation-google-genai",
    "opentelemetry-util-genai",
    "opentelemetry-semantic-conventions-ai",
)


# --------------------------------------------------------------------------------------
# child side: one mode, one scenario, one process
# --------------------------------------------------------------------------------------


def _make_provider(processor: str) -> tuple[Any, Any]:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class CountingExporter(SpanExporter):
        """Counts spans and keeps the last one (for the attribute checks)."""

        def __init__(self) -> None:
            self.count = 0
            self.last = None
            self.recent: collections.deque[Any] = collections.deque(maxlen=4)

        def export(self, spans: Any) -> SpanExportResult:
            self.count += len(spans)
            self.last = spans[-1]
            self.recent.extend(spans)
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    exporter = CountingExporter()
    provider = TracerProvider()
    if processor == "batch":
        provider.add_span_processor(BatchSpanProcessor(exporter))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider, exporter


def _load_prices() -> None:
    """Load the bundled list prices before timing: a one-time cost (about a second of CPU on a
    background thread, once per process), not a per-call one; start-up measures it apart."""
    try:
        from opentelemetry_instrumentation_cmdrdata import pricing
    except ImportError:  # a package from before cost existed (--before-path)
        return
    pricing.bundled_prices().wait(120)


def _instrument(mode: str, provider: Any) -> None:
    if mode in ("cmdrdata", "cmdrdata-before"):
        from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor

        CmdrDataInstrumentor().instrument(tracer_provider=provider)
        _load_prices()
    elif mode == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif mode == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif mode == "genai-openai":
        _genai_openai_instrumentor()().instrument(tracer_provider=provider)
    elif mode in ANCHOR_INSTRUMENTORS:
        instrumentor = _anchor_instrumentor(mode)()
        if mode in SKIP_DEP_CHECK:
            instrumentor.instrument(tracer_provider=provider, skip_dep_check=True)
        else:
            # A declared SDK range that excludes the installed SDK raises here (with the
            # conflict) instead of leaving the SDK silently uninstrumented.
            instrumentor.instrument(tracer_provider=provider, raise_exception_on_conflict=True)


def _anchor_instrumentor(mode: str) -> Any:
    import importlib

    module, name = ANCHOR_INSTRUMENTORS[mode]
    return getattr(importlib.import_module(module), name)


def _genai_openai_instrumentor() -> Any:
    import importlib

    last: Exception | None = None
    for module in (
        "opentelemetry.instrumentation.genai.openai",
        "opentelemetry.instrumentation.genai_openai",
        "opentelemetry.instrumentation.openai_v2",
    ):
        try:
            return importlib.import_module(module).OpenAIInstrumentor
        except Exception as exc:  # try the next known module layout
            last = exc
    raise ImportError(
        f"no OpenAIInstrumentor in opentelemetry-instrumentation-genai-openai: {last}"
    )


def _build_call(mode: str, scenario: tuple[str, int, bool, int, int], tracer: Any) -> Any:
    """A zero-argument function making one complete call (streams are consumed)."""
    import canned
    import httpx2

    provider, chunks, include_usage, _, _ = scenario
    if provider == "openai":
        import openai

        client = openai.OpenAI(
            api_key="sk-bench",
            base_url="https://api.openai.com/v1",
            max_retries=0,
            http_client=httpx2.Client(transport=canned.openai_transport(chunks)),
        )
        kwargs: dict[str, Any] = {
            "model": canned.OPENAI_MODEL,
            "messages": [
                {"role": "system", "content": "You are a concise assistant."},
                {"role": "user", "content": "Explain OpenTelemetry spans in two sentences."},
            ],
            "max_tokens": 256,
            "temperature": 0.2,
        }
        if chunks:
            kwargs["stream"] = True
            if include_usage:
                kwargs["stream_options"] = {"include_usage": True}
        if mode == "floor":
            import floor

            def create(**kw: Any) -> Any:
                return floor.openai_chat(tracer, client, **kw)
        else:
            create = client.chat.completions.create
        if chunks:

            def call() -> int:
                seen = 0
                for _chunk in create(**kwargs):
                    seen += 1
                return seen

            return call
        return lambda: create(**kwargs)

    if provider == "anthropic":
        import anthropic

        client = anthropic.Anthropic(
            api_key="sk-ant-bench",
            base_url="https://api.anthropic.com",
            max_retries=0,
            http_client=httpx2.Client(transport=canned.anthropic_transport()),
        )
        kwargs = {
            "model": canned.ANTHROPIC_MODEL,
            "max_tokens": 256,
            "stop_sequences": ["\n\nHuman:"],
            "system": "You are a concise assistant.",
            "messages": [
                {"role": "user", "content": "Explain OpenTelemetry spans in two sentences."}
            ],
        }
        if mode == "floor":
            import floor

            return lambda: floor.anthropic_messages(tracer, client, **kwargs)
        create = client.messages.create
        return lambda: create(**kwargs)

    if provider == "gemini":
        from google import genai
        from google.genai import types

        client = genai.Client(
            api_key="bench-key",
            http_options=types.HttpOptions(
                httpx_client=httpx2.Client(transport=canned.gemini_transport(chunks))
            ),
        )
        kwargs = {
            "model": canned.GEMINI_MODEL,
            "contents": "Explain OpenTelemetry spans in two sentences.",
            "config": {"max_output_tokens": 256, "temperature": 0.2},
        }
        models = client.models
        if chunks:
            if mode == "floor":
                import floor

                def open_stream() -> Any:
                    return floor.gemini_generate_stream(tracer, client, **kwargs)
            else:

                def open_stream() -> Any:
                    return models.generate_content_stream(**kwargs)

            def consume() -> int:
                seen = 0
                for _chunk in open_stream():
                    seen += 1
                return seen

            return consume
        if mode == "floor":
            import floor

            return lambda: floor.gemini_generate(tracer, client, **kwargs)
        return lambda: models.generate_content(**kwargs)

    raise ValueError(provider)


def _span_summary(span: Any) -> dict[str, Any] | None:
    if span is None:
        return None
    attrs = {}
    for key, value in (span.attributes or {}).items():
        attrs[key] = list(value) if isinstance(value, tuple) else value
    scope = getattr(span, "instrumentation_scope", None)
    return {
        "name": span.name,
        "scope": getattr(scope, "name", None),
        "attributes": attrs,
        "events": len(span.events),
    }


def run_child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE))
    all_scenarios = {**SCENARIOS, **CHECK_SCENARIOS}
    scenario = list(all_scenarios[args.scenario])
    if args.calls:
        scenario[3] = args.calls
    if args.warmup is not None:
        scenario[4] = args.warmup
    provider, exporter = _make_provider(args.processor)
    _instrument(args.mode, provider)
    tracer = provider.get_tracer("benchmarks.floor")
    call = _build_call(args.mode, tuple(scenario), tracer)
    calls, warmup = scenario[3], scenario[4]

    seen = None
    for _ in range(warmup):
        seen = call()
    gc.collect()
    # Two clocks per call: CPU time of the whole process (what the call costs, all
    # threads included, hardly disturbed by other processes on a shared machine)
    # and wall time (what a caller waits, disturbed by everything else running).
    cpu, wall = time.process_time_ns, time.perf_counter_ns
    times = []
    walls = []
    for _ in range(calls):
        c0 = cpu()
        w0 = wall()
        call()
        w1 = wall()
        c1 = cpu()
        times.append(c1 - c0)
        walls.append(w1 - w0)
    provider.force_flush()
    # The spans of the last call (the Anthropic SDK exports a native span of its own
    # next to an instrumentation's; the token check looks at all of them).
    total = warmup + calls
    per_call = exporter.count // total if total and exporter.count % total == 0 else 1
    last_call = list(exporter.recent)[-per_call:] if per_call else []
    out = {
        "mode": args.mode,
        "scenario": args.scenario,
        "calls": calls,
        "median_us": statistics.median(times) / 1000,
        "mean_us": statistics.fmean(times) / 1000,
        "wall_median_us": statistics.median(walls) / 1000,
        "spans": exporter.count,
        "calls_total": warmup + calls,
        "chunks_seen": seen if isinstance(seen, int) else None,
        "last_span": _span_summary(exporter.last),
        "last_call_spans": [_span_summary(span) for span in last_call],
    }
    provider.shutdown()
    print("BENCH-RESULT " + json.dumps(out))


def run_startup_child(args: argparse.Namespace) -> None:
    """Time instrument() in a fresh process, after the SDKs are imported."""
    clock = time.perf_counter
    t0 = clock()
    import anthropic  # noqa: F401
    import openai  # noqa: F401
    from google import genai  # noqa: F401
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    t1 = clock()
    mode = args.mode
    if mode in ("cmdrdata", "cmdrdata-before"):
        from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor as Instrumentor
    elif mode == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as Instrumentor
    elif mode == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as Instrumentor
    elif mode == "genai-openai":
        Instrumentor = _genai_openai_instrumentor()
    elif mode in ANCHOR_INSTRUMENTORS:
        Instrumentor = _anchor_instrumentor(mode)
    else:
        raise ValueError(mode)
    t2 = clock()
    extra = {"skip_dep_check": True} if mode in SKIP_DEP_CHECK else {}
    Instrumentor().instrument(tracer_provider=provider, **extra)
    t3 = clock()
    out = {
        "mode": mode,
        "sdk_import_ms": (t1 - t0) * 1000,
        "package_import_ms": (t2 - t1) * 1000,
        "instrument_ms": (t3 - t2) * 1000,
    }
    print("BENCH-RESULT " + json.dumps(out))


def run_versions_child() -> None:
    from importlib import metadata

    versions = {}
    for name in DIST_NAMES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    print("BENCH-RESULT " + json.dumps({"python": platform.python_version(), **versions}))


# --------------------------------------------------------------------------------------
# parent side: orchestration and the report
# --------------------------------------------------------------------------------------


class ChildFailed(RuntimeError):
    pass


PACKAGE_PATH: str | None = None
BEFORE_PATH: str | None = None
PACKAGE_NOTE: str = ""


def _spawn(python: str, extra: list[str], timeout: float = 900) -> dict[str, Any]:
    cmd = [python, str(Path(__file__).resolve()), "--child", *extra]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    package_path = BEFORE_PATH if "cmdrdata-before" in extra else PACKAGE_PATH
    if package_path:
        # A frozen copy of the project shadows the editable install in every venv.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_path, env.get("PYTHONPATH")]))
    # Keep anchors' own exporters/propagation defaults, but never let them reach out.
    env.setdefault("OTEL_TRACES_EXPORTER", "none")
    env.setdefault("OTEL_METRICS_EXPORTER", "none")
    env.setdefault("OTEL_LOGS_EXPORTER", "none")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            return json.loads(line[len("BENCH-RESULT ") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
    raise ChildFailed(" | ".join(tail) or f"exit {proc.returncode}")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _fmt_us(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "–"
    text = f"{value:+.0f}" if sign else f"{value:.0f}"
    return text + " µs"


def _fmt_range(values: list[float], digits: int = 0) -> str:
    if not values:
        return ""
    return f"{min(values):+.{digits}f}..{max(values):+.{digits}f}"


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu})"


def _loadavg() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def git_state(package: str) -> str | None:
    """``<short HEAD> (package clean)`` or ``(with uncommitted changes to the package)``.

    ``package`` is a folder of the repository; None when git cannot tell.
    """
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", package)
    except (OSError, subprocess.SubprocessError):
        return None
    state = "with uncommitted changes to the package" if dirty else "package clean"
    return f"{head} ({state})"


def _package_note() -> str:
    """Which copy of the instrumentor was measured, and its git state."""
    where = PACKAGE_PATH or str(Path(__file__).resolve().parent.parent)
    state = git_state("opentelemetry_instrumentation_cmdrdata")
    return f"`{where}`, git {state}" if state else where


def _modes_for(scenario: str, modes: list[str]) -> list[str]:
    provider = {**SCENARIOS, **CHECK_SCENARIOS}[scenario][0]
    return [m for m in modes if m in CORE_MODES or ANCHOR_PROVIDER.get(m) == provider]


def _take_snapshot() -> str:
    """Copy the project's packages to a temp dir (compiled), so edits made while
    the benchmark runs cannot change what is measured half-way."""
    import compileall
    import shutil
    import tempfile

    global PACKAGE_NOTE
    PACKAGE_NOTE = _package_note()
    root = Path(__file__).resolve().parent.parent
    dest = Path(tempfile.mkdtemp(prefix="cmdrdata-bench-"))
    for name in ("opentelemetry_instrumentation_cmdrdata", "cmdrdata_exporter"):
        shutil.copytree(root / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(str(dest), quiet=1)
    return str(dest)


def run_parent(args: argparse.Namespace) -> None:
    global PACKAGE_PATH, PACKAGE_NOTE, BEFORE_PATH
    BEFORE_PATH = args.before_path
    started = time.time()
    load_at_start = _loadavg()
    if args.package_path:
        PACKAGE_PATH = args.package_path
    elif not args.no_snapshot:
        PACKAGE_PATH = _take_snapshot()
        PACKAGE_NOTE = PACKAGE_NOTE.replace(
            "`, ", "`, copied to " + PACKAGE_PATH + " at start; ", 1
        )
    core_python = args.python or sys.executable
    anchors: dict[str, str] = {}
    for item in args.anchor or []:
        name, _, path = item.partition("=")
        anchors[name] = path
    for name, path in DEFAULT_ANCHOR_PYTHONS.items():
        anchors.setdefault(name, path)
    pythons = {m: core_python for m in CORE_MODES}

    requested = [m.strip() for m in args.modes.split(",") if m.strip()]
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    processors = [p.strip() for p in args.processor.split(",") if p.strip()]
    if args.quick:
        calls_override = {
            "openai": 300,
            "openai-stream50": 60,
            "openai-stream500": 10,
            "anthropic": 300,
            "gemini": 300,
            "gemini-stream50": 60,
            "gemini-stream500": 10,
        }
        warm_override = 30
    elif args.scale != 1.0:
        calls_override = {s: max(3, round(v[3] * args.scale)) for s, v in SCENARIOS.items()}
        warm_override = None
    else:
        calls_override, warm_override = {}, None

    # Which anchors can run here? Probe each one with a short real call.
    skipped: dict[str, str] = {}
    modes: list[str] = []
    for mode in requested:
        if mode == "cmdrdata-before" and not BEFORE_PATH:
            continue
        if mode in CORE_MODES:
            modes.append(mode)
            continue
        if mode not in ANCHOR_MODES:
            raise SystemExit(f"unknown mode {mode!r}")
        python = anchors.get(mode)
        if not python or not Path(python).exists():
            skipped[mode] = f"no interpreter at {python}"
            continue
        probe = ["--mode", mode, "--scenario", ANCHOR_PROVIDER[mode], "--calls", "3"]
        try:
            _spawn(python, [*probe, "--warmup", "1"])
        except ChildFailed as exc:
            skipped[mode] = f"fails: {exc}"
            continue
        except subprocess.TimeoutExpired:
            skipped[mode] = "probe timed out"
            continue
        pythons[mode] = python
        modes.append(mode)
    for mode, why in skipped.items():
        _log(f"skipping {mode}: {why}")

    versions: dict[str, dict[str, str]] = {}
    for python in sorted(set(pythons.values())):
        versions[python] = _spawn(python, ["--versions"])

    # ---- timed rounds -------------------------------------------------------------
    # results[processor][scenario][mode] -> list of per-round medians (µs); round-aligned
    results: dict[str, dict[str, dict[str, list[float | None]]]] = {}
    spans_ok: dict[str, bool] = {}
    span_counts: dict[tuple[str, int, str], dict[str, tuple[int, int]]] = {}
    wall_table: dict[str, dict[str, dict[str, list[float | None]]]] = {}
    for processor in processors:
        proc_scenarios = (
            scenarios
            if processor == "simple"
            else [s for s in args.batch_scenarios.split(",") if s]
        )
        table = results.setdefault(processor, {})
        for r in range(args.rounds):
            for scenario in proc_scenarios:
                smodes = _modes_for(scenario, modes)
                k = r % len(smodes)
                order = smodes[k:] + smodes[:k]
                for mode in order:
                    extra = ["--mode", mode, "--scenario", scenario, "--processor", processor]
                    if scenario in calls_override:
                        extra += ["--calls", str(calls_override[scenario])]
                    if warm_override is not None:
                        extra += ["--warmup", str(min(warm_override, SCENARIOS[scenario][4]))]
                    try:
                        res = _spawn(pythons[mode], extra)
                    except (ChildFailed, subprocess.TimeoutExpired) as exc:
                        _log(f"  {processor} r{r} {scenario} {mode}: FAILED {exc}")
                        table.setdefault(scenario, {}).setdefault(mode, []).append(None)
                        wall_table.setdefault(processor, {}).setdefault(scenario, {}).setdefault(
                            mode, []
                        ).append(None)
                        continue
                    table.setdefault(scenario, {}).setdefault(mode, []).append(res["median_us"])
                    wall_table.setdefault(processor, {}).setdefault(scenario, {}).setdefault(
                        mode, []
                    ).append(res["wall_median_us"])
                    span_counts.setdefault((processor, r, scenario), {})[mode] = (
                        res["spans"],
                        res["calls_total"],
                    )
                    _log(
                        f"  {processor} r{r} {scenario:17s} {mode:12s} "
                        f"{res['median_us']:9.1f} µs  spans={res['spans']}"
                    )
    # Every timed and warm-up call must add exactly one span over `none` (which may
    # export spans of its own: the Anthropic SDK has native tracing).
    for counts in span_counts.values():
        if "none" not in counts:
            continue
        base = counts["none"][0]
        for mode, (spans, total) in counts.items():
            if mode != "none":
                spans_ok[mode] = spans_ok.get(mode, True) and spans - base == total

    # ---- start-up -------------------------------------------------------------------
    startup: dict[str, list[dict[str, float]]] = {}
    startup_modes = [m for m in modes if m not in ("none", "floor")]
    for _ in range(args.startup_rounds):
        for mode in startup_modes:
            try:
                res = _spawn(pythons[mode], ["--startup", "--mode", mode])
            except ChildFailed as exc:
                _log(f"  startup {mode}: FAILED {exc}")
                continue
            startup.setdefault(mode, []).append(res)

    # ---- token capture check (not timed) --------------------------------------------
    checks: dict[str, dict[str, Any]] = {}
    providers = {SCENARIOS[s][0] for s in scenarios if s in SCENARIOS}
    check_runs = [
        (mode, scenario)
        for mode in modes
        for scenario in OPENAI_CHECKS + OTHER_CHECKS
        if mode in _modes_for(scenario, modes)
        and SCENARIOS.get(scenario, CHECK_SCENARIOS.get(scenario))[0] in providers
        # `none` is checked where the SDK may record usage itself (Anthropic's native spans)
        and (mode != "none" or scenario in OTHER_CHECKS)
    ]
    for mode, scenario in check_runs:
        try:
            res = _spawn(
                pythons[mode],
                ["--mode", mode, "--scenario", scenario, "--calls", "3", "--warmup", "1"],
            )
        except ChildFailed as exc:
            checks.setdefault(mode, {})[scenario] = {"error": str(exc)}
            continue
        checks.setdefault(mode, {})[scenario] = res

    report = render(
        args=args,
        modes=modes,
        skipped=skipped,
        pythons=pythons,
        versions=versions,
        results=results,
        wall=wall_table,
        spans_ok=spans_ok,
        startup=startup,
        checks=checks,
        elapsed=time.time() - started,
        load=(load_at_start, _loadavg()),
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "results": results,
                    "wall": wall_table,
                    "startup": startup,
                    "checks": checks,
                    "versions": versions,
                    "skipped": skipped,
                },
                indent=1,
            )
        )
    if PACKAGE_PATH and not args.package_path:
        import shutil

        shutil.rmtree(PACKAGE_PATH, ignore_errors=True)
    if args.out:
        Path(args.out).write_text(report)
        _log(f"wrote {args.out}")
    else:
        print(report)


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def _overheads(table: dict[str, list[float | None]], mode: str) -> list[float]:
    base = table.get("none", [])
    out = []
    for b, v in zip(base, table.get(mode, []), strict=False):
        if b is not None and v is not None:
            out.append(v - b)
    return out


def _ratios(table: dict[str, list[float | None]], mode: str) -> list[float]:
    base = table.get("none", [])
    return [v / b for b, v in zip(base, table.get(mode, []), strict=False) if b and v]


def _per_chunk(
    table: dict[str, dict[str, list[float | None]]], mode: str, provider: str = "openai"
) -> list[float]:
    s50, s500 = table.get(f"{provider}-stream50", {}), table.get(f"{provider}-stream500", {})
    a50 = s50.get(mode, [])
    a500 = s500.get(mode, [])
    b50, b500 = s50.get("none", []), s500.get("none", [])
    out = []
    for v50, v500, n50, n500 in zip(a50, a500, b50, b500, strict=False):
        if None in (v50, v500, n50, n500):
            continue
        if mode == "none":
            out.append((v500 - v50) / 450)
        else:
            out.append(((v500 - n500) - (v50 - n50)) / 450)
    return out


SCENARIO_TITLES = {
    "openai": "OpenAI `chat.completions.create`, not streamed",
    "openai-stream50": "OpenAI `chat.completions.create(stream=True)`, 50 chunks + include_usage",
    "openai-stream500": "OpenAI `chat.completions.create(stream=True)`, 500 chunks + include_usage",
    "anthropic": "Anthropic `messages.create`, not streamed",
    "gemini": "Gemini `models.generate_content`, not streamed",
    "gemini-stream50": "Gemini `models.generate_content_stream`, 50 chunks",
    "gemini-stream500": "Gemini `models.generate_content_stream`, 500 chunks",
}


def _usage_keys(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "no span"
    attrs = summary["attributes"]
    short = []
    for key in sorted(attrs):
        if key.startswith("gen_ai.usage.") or key.startswith("llm.usage."):
            name = key.split("usage.", 1)[1]
            short.append(f"{name}={attrs[key]}")
    return ", ".join(short) if short else "**none**"


# Spans the SDK itself exports when a TracerProvider is set (in every mode, `none` included).
SDK_NATIVE_SCOPES = {"com.anthropic.sdk.python"}
OTHER_CHECK_TITLES = {
    "anthropic": "Anthropic `messages.create`",
    "gemini": "Gemini `generate_content`",
    "gemini-stream50": "Gemini `generate_content_stream`, 50 chunks",
}


def _instrumentation_span(mode: str, res: dict[str, Any]) -> dict[str, Any] | None:
    """The span an instrumentation made on the last call; for `none`, the SDK's own."""
    spans = res.get("last_call_spans") or []
    if mode == "none":
        return spans[-1] if spans else None
    own = [s for s in spans if s and s.get("scope") not in SDK_NATIVE_SCOPES]
    return own[-1] if own else None


def _render_other_checks(checks: dict[str, dict[str, Any]]) -> list[str]:
    """The token-capture table of the Anthropic and Gemini scenarios."""
    rows = {m: by for m, by in checks.items() if set(by) & set(OTHER_CHECKS)}
    if not rows:
        return []
    scenarios = [s for s in OTHER_CHECKS if any(s in by for by in rows.values())]
    canned_numbers = _canned_numbers()
    out = [
        "## Token usage on the span (Anthropic and Gemini; 3 calls, spans of the last call)",
        "",
        "What the canned responses report (benchmarks/canned.py). Anthropic: `input_tokens` "
        f"{canned_numbers['prompt']} (uncached), `cache_read_input_tokens` "
        f"{canned_numbers['cached']}, `cache_creation_input_tokens` 0, `output_tokens` "
        f"{canned_numbers['completion']}: {canned_numbers['prompt'] + canned_numbers['cached']} "
        "input tokens in all. Gemini (plain call and the stream's last chunk): "
        f"`promptTokenCount` {canned_numbers['prompt']} (cached included), "
        f"`cachedContentTokenCount` {canned_numbers['cached']}, `candidatesTokenCount` "
        f"{canned_numbers['completion']}, `thoughtsTokenCount` {canned_numbers['reasoning']}, "
        f"`totalTokenCount` "
        f"{canned_numbers['prompt'] + canned_numbers['completion'] + canned_numbers['reasoning']}"
        ": the model produced "
        f"{canned_numbers['completion'] + canned_numbers['reasoning']} output tokens, thoughts "
        "included. The `none` row is the SDK's own span, where it makes one (Anthropic); other "
        "rows show the instrumentation's span, not the SDK's.",
        "",
        "| mode | "
        + " | ".join(OTHER_CHECK_TITLES[s] for s in scenarios)
        + " | spans exported per call (same column order) |",
        "|---|" + "---|" * len(scenarios) + "---|",
    ]
    for mode, by in rows.items():
        cells = []
        per_call = []
        for scenario in scenarios:
            res = by.get(scenario)
            if res is None:
                cells.append("–")
                continue
            if "error" in res:
                cells.append("error: " + res["error"][:80])
                continue
            span = _instrumentation_span(mode, res)
            cells.append(_usage_keys(span) if span else "no span")
            if span is None:
                per_call.append("0")
                continue
            per_call.append(str(len(res.get("last_call_spans") or [])))
        out.append(f"| {mode} | {' | '.join(cells)} | {', '.join(per_call) or '–'} |")
    out.append("")
    return out


def _canned_numbers() -> dict[str, int]:
    sys.path.insert(0, str(HERE))
    import canned

    return {
        "prompt": canned.PROMPT_TOKENS,
        "completion": canned.COMPLETION_TOKENS,
        "cached": canned.CACHED_TOKENS,
        "reasoning": canned.REASONING_TOKENS,
    }


def render(**kw: Any) -> str:
    args = kw["args"]
    results = kw["results"]
    modes = kw["modes"]
    lines: list[str] = []
    add = lines.append
    core_versions = kw["versions"][kw["pythons"]["none"]]
    argv = " ".join(["python", "benchmarks/bench_overhead.py", *sys.argv[1:]])
    add("# Instrumentation overhead: cmdrdata vs the one-span floor and the anchors")
    add("")
    add(f"- Date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}")
    add(f"- Machine: {_machine()}")
    add(
        f"- Python {core_versions.get('python')}; command: `{argv}`"
        f" (took {kw['elapsed'] / 60:.1f} min)"
    )
    if kw.get("load"):
        add(
            f"- Load average (1/5/15 min) at start: {kw['load'][0]}; at the end: {kw['load'][1]}"
            f" (on {os.cpu_count()} CPUs)"
        )
    add(f"- Package measured: {PACKAGE_NOTE or _package_note()}")
    add(
        f"- Rounds: {args.rounds}; modes interleaved, order rotated each round; each run is a "
        "fresh subprocess: warm-up calls, then timed calls, per-call median."
    )
    add(
        "- Calls per run (timed / warm-up): "
        + ", ".join(f"{s} {c}/{w}" for s, (_, _, _, c, w) in SCENARIOS.items())
        + (" (`--quick` lowers these)" if args.quick else "")
        + (f" (timed calls × {args.scale} here)" if args.scale != 1.0 else "")
    )
    add(
        "- Transport: `httpx2.MockTransport` in process (no network, no sockets); canned "
        "responses with usage (benchmarks/canned.py). TracerProvider from opentelemetry-sdk "
        "with a span-counting exporter; no MeterProvider/LoggerProvider installed."
    )
    add(
        "- **Clock**: per-call *process CPU time* (`time.process_time_ns`, all threads), because "
        "this 2-core machine is shared and wall time swings several-fold with other load; the "
        "last column gives the wall-clock overhead measured on the same calls."
    )
    add(
        "- **overhead** = mode's per-call median − `none`'s per-call median *in the same round*; "
        "table shows the median over rounds and [min..max]. **ratio** = mode / none (median over "
        "rounds). **vs floor** = median overhead / floor's median overhead."
    )
    add("")
    add("## Versions")
    add("")
    pythons = kw["pythons"]
    by_python: dict[str, list[str]] = {}
    for mode, py in pythons.items():
        if mode in modes:
            by_python.setdefault(py, []).append(mode)
    for py, ms in by_python.items():
        v = kw["versions"][py]
        pkgs = ", ".join(f"{k} {val}" for k, val in v.items() if k != "python")
        add(f"- `{py}` ({', '.join(ms)}): Python {v.get('python')}; {pkgs}")
    for mode, why in kw["skipped"].items():
        add(f"- **{mode} not measured**: {why}")
    for mode, why in SKIP_DEP_CHECK.items():
        if mode in modes:
            add(f"- **{mode}**: {why}.")
    add("")

    for processor, table in results.items():
        add(
            f"## Per-call overhead ({'SimpleSpanProcessor' if processor == 'simple' else 'BatchSpanProcessor'})"
        )
        add("")
        wall_t = kw["wall"].get(processor, {})
        add(
            "| scenario | mode | per-call median (CPU) | overhead vs none [min..max] | ratio | vs floor | wall-clock overhead (median) |"
        )
        add("|---|---|---:|---:|---:|---:|---:|")
        for scenario, per_mode in table.items():
            floor_ovh = _overheads(per_mode, "floor")
            floor_med = _median(floor_ovh) if floor_ovh else None
            for mode in modes:
                values = [v for v in per_mode.get(mode, []) if v is not None]
                if not values:
                    continue
                med = _median(values)
                if mode == "none":
                    wmed = _median(
                        [v for v in wall_t.get(scenario, {}).get("none", []) if v is not None]
                        or [0]
                    )
                    add(
                        f"| {SCENARIO_TITLES.get(scenario, scenario)} | none | {med:.0f} µs | – | 1.00× | – | ({wmed:.0f} µs per call) |"
                    )
                    continue
                ovh = _overheads(per_mode, mode)
                ovh_med = _median(ovh) if ovh else None
                ratio = _median(_ratios(per_mode, mode))
                vs_floor = (
                    f"{ovh_med / floor_med:.2f}×"
                    if floor_med and ovh_med is not None and mode != "floor"
                    else "–"
                )
                name = f"**{mode}**" if mode == "cmdrdata" else mode
                wovh = _overheads(wall_t.get(scenario, {}), mode)
                add(
                    f"| | {name} | {med:.0f} µs | {_fmt_us(ovh_med, True)} [{_fmt_range(ovh)}] "
                    f"| {ratio:.2f}× | {vs_floor} | {_fmt_us(_median(wovh) if wovh else None, True)} |"
                )
        add("")
        for provider in ("openai", "gemini"):
            if f"{provider}-stream50" not in table or f"{provider}-stream500" not in table:
                continue
            add(
                f"### Per streamed chunk, {provider} ({processor}): "
                "((overhead₅₀₀ − overhead₅₀) / 450, per round)"
            )
            add("")
            add("| mode | µs per chunk, median [min..max] |")
            add("|---|---:|")
            for mode in modes:
                pc = _per_chunk(table, mode, provider)
                if not pc:
                    continue
                label = (
                    "none (the SDK's own cost per chunk, not an overhead)"
                    if mode == "none"
                    else mode
                )
                add(f"| {label} | {_median(pc):.2f} [{_fmt_range(pc, 2)}] |")
            add("")

    startup = kw["startup"]
    if startup:
        add(
            "## Start-up (fresh process; openai, anthropic, google.genai and the SDK TracerProvider imported first)"
        )
        add("")
        add(
            "| instrumentor | SDK imports | instrumentor package import | `instrument()` | import + instrument() |"
        )
        add("|---|---:|---:|---:|---:|")
        for mode, runs in startup.items():

            def med(key: str, runs: list[dict[str, float]] = runs) -> float:
                return _median([r[key] for r in runs])

            both = _median([r["package_import_ms"] + r["instrument_ms"] for r in runs])
            add(
                f"| {mode} | {med('sdk_import_ms'):.0f} ms | {med('package_import_ms'):.1f} ms "
                f"| {med('instrument_ms'):.1f} ms | {both:.1f} ms |"
            )
        add("")
        add(f"Medians of {args.startup_rounds} fresh processes each.")
        add("")

    all_checks = kw["checks"]
    checks = {m: by for m, by in all_checks.items() if set(by) & set(OPENAI_CHECKS)}
    if checks:
        add("## Token usage on the span (OpenAI; 3 calls, last span inspected)")
        add("")
        add(
            "The mock answers like the API: a stream ends with a usage chunk only when the request "
            'has `stream_options={"include_usage": true}`. "chunks seen" is what the caller\'s '
            "loop received (50 content chunks + 1 finish chunk, + 1 usage chunk when asked for)."
        )
        add("")
        add(
            "| mode | non-stream | stream + include_usage | stream, no stream_options | chunks seen (no stream_options) | `server.address` attribute |"
        )
        add("|---|---|---|---|---:|---|")
        for mode, by_scenario in checks.items():
            cells = []
            for scenario in ("openai", "openai-stream50", "openai-stream50-nousage"):
                res = by_scenario.get(scenario, {})
                if "error" in res:
                    cells.append("error: " + res["error"][:80])
                else:
                    cells.append(_usage_keys(res.get("last_span")))
            nous = by_scenario.get("openai-stream50-nousage", {})
            seen = nous.get("chunks_seen")
            span = (by_scenario.get("openai", {}) or {}).get("last_span") or {}
            address = span.get("attributes", {}).get("server.address", "**absent**")
            add(f"| {mode} | {' | '.join(cells)} | {seen} | {address} |")
        add("")
        events = {
            mode: (by.get("openai-stream50", {}).get("last_span") or {}).get("events")
            for mode, by in checks.items()
        }
        add(
            "Span events on a 50-chunk streamed span: "
            + ", ".join(f"{m} {e}" for m, e in events.items())
            + "."
        )
        add("")
    lines.extend(_render_other_checks(all_checks))
    ok = kw["spans_ok"]
    bad = [m for m, good in ok.items() if not good]
    add(
        "Span count check (every timed and warm-up call exported exactly one span more than "
        "`none`, whose Anthropic runs export the SDK's own native spans): "
        + ("all modes OK." if not bad else f"MISMATCH in {', '.join(bad)}.")
    )
    add("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, few calls")
    parser.add_argument("--out", help="write the Markdown report here (default: stdout)")
    parser.add_argument("--json", help="also write the raw per-round numbers here")
    parser.add_argument(
        "--processor",
        default="simple",
        help="simple, batch, or simple,batch (batch runs --batch-scenarios)",
    )
    parser.add_argument("--batch-scenarios", default="openai")
    parser.add_argument("--modes", default=",".join(CORE_MODES + ANCHOR_MODES))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--python", help="interpreter for none/floor/cmdrdata (default: this one)")
    parser.add_argument(
        "--anchor",
        action="append",
        metavar="NAME=PYTHON",
        help="interpreter of an anchor's venv, e.g. openllmetry=/tmp/venv-anchors/bin/python",
    )
    parser.add_argument(
        "--before-path",
        help="directory holding another copy of the project's packages, measured as the "
        "mode cmdrdata-before in the same rounds (before/after a change)",
    )
    parser.add_argument("--startup-rounds", type=int, default=5)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply the timed calls per run (e.g. 2.5 for steadier streams)",
    )
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="measure the installed (editable) package in place instead of a copy",
    )
    parser.add_argument(
        "--package-path",
        help="directory holding a copy of the project's packages "
        "to measure instead of the installed one (put first on PYTHONPATH)",
    )
    # child-only
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--startup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--versions", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.versions:
            run_versions_child()
        elif args.startup:
            run_startup_child(args)
        else:
            run_child(args)
        return
    if args.quick:
        args.rounds = 1
        args.startup_rounds = 2
    run_parent(args)


if __name__ == "__main__":
    main()
