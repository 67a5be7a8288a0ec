"""Supported-version matrix: the oldest and the newest releases of each supported dependency.

    pip install nox uv       # once; nox stays out of the test extra (CI's .ci/run does not need it)
    nox -s matrix            # every case below, one fresh virtualenv each (under .nox/)
    nox -s "matrix(case='openai-latest')"   # one case
    nox -s matrix -- --report              # ... and record the results (see below)
    nox -l                   # list the cases

Both ends come from ``pyproject.toml``, never from this file: a "floor" case pins the lowest
release the project declares (the ``>=`` bound), a "latest" case installs the declared range
itself, so the resolver picks the newest release inside it on the day of the run. The pinned
packages replace the test extra's own requirement for them; the rest of the test extra is
installed as usual. With ``uv`` on PATH the installs are much faster; nox falls back to
virtualenv + pip otherwise.

``--report`` records each case's outcome (the versions it resolved, passed or failed, how
long, the date and the commit) in ``docs/tested-versions.json`` and renders
``docs/tested-versions.md`` and the README's "Supported versions" table from it, so the table
says what was run and when. Every other argument after ``--`` goes to pytest:
``nox -s matrix -- -x -q``; test paths there replace the case's own.

``nox -s foreign`` runs ``tests/foreign`` with other projects' GenAI instrumentations installed
(OpenLLMetry, OpenInference, the official OpenTelemetry ones). They register entry points that
``opentelemetry-instrument`` would load, so they live only in that session's virtualenv, never in
the main test environment.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nox
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent
REPORT_JSON = ROOT / "docs" / "tested-versions.json"
REPORT_MD = ROOT / "docs" / "tested-versions.md"
README = ROOT / "README.md"
README_BEGIN = "<!-- tested-versions:begin (written by `nox -s matrix -- --report`) -->"
README_END = "<!-- tested-versions:end -->"
REPORT_FLAG = "--report"

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["matrix", "foreign"]  # plain `nox` runs both; otel_at is on demand


def _pyproject() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _name(requirement: str) -> str:
    """The normalised project name of a requirement string."""
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def _declared() -> dict[str, str]:
    """What users get: the dependencies and the ``instruments-any`` extra, by project name."""
    project = _pyproject()
    requirements = [*project["dependencies"], *project["optional-dependencies"]["instruments-any"]]
    return {_name(r): r for r in requirements}


DECLARED = _declared()


def declared(name: str) -> str:
    """The declared requirement of ``name``, e.g. ``openai >= 2.0.0, < 4``: its newest release."""
    return DECLARED[name]


def floor(name: str) -> str:
    """The lowest release ``name`` is declared to work with (its ``>=`` bound)."""
    bounds = [s.version for s in Requirement(DECLARED[name]).specifier if s.operator == ">="]
    if len(bounds) != 1:
        raise ValueError(f"{name}: the declared range needs exactly one '>=' bound")
    return bounds[0]


def _pin(name: str) -> str:
    return f"{name}=={floor(name)}"


OPENAI_TESTS = [
    "tests/test_openai_errors_and_kwargs.py",
    "tests/test_openai_matrix.py",
    "tests/test_openai_streams.py",
    "tests/test_instrumentor.py",
]
ANTHROPIC_TESTS = [
    "tests/test_anthropic_calls.py",
    "tests/test_anthropic_errors.py",
    "tests/test_anthropic_native_tracing.py",
    "tests/test_anthropic_streams.py",
]
GEMINI_TESTS = [
    "tests/test_gemini_calls.py",
    "tests/test_gemini_event.py",
    "tests/test_gemini_streams.py",
]
# httpx is the exporter's HTTP client: everything that delivers events.
HTTPX_TESTS = ["tests/exporter", "tests/test_attribution_e2e.py"]
# wrapt holds every wrapper: calls, streams (its proxies) and raw responses of all three SDKs.
WRAPT_TESTS = [*OPENAI_TESTS, *ANTHROPIC_TESTS, *GEMINI_TESTS]
# The OpenTelemetry floor touches everything: the instrumentor, the exporter, auto
# instrumentation, sampling and metrics. Run all of it but the soak.
OTEL_TESTS = ["tests"]
# The OpenTelemetry packages the test extra brings, released in lockstep with the core
# (opentelemetry-api) or with contrib (opentelemetry-instrumentation).
OTEL_CORE = ["opentelemetry-sdk", "opentelemetry-proto", "opentelemetry-exporter-otlp-proto-http"]
OTEL_CONTRIB = [
    "opentelemetry-instrumentation-httpx",
    "opentelemetry-distro",
    "opentelemetry-semantic-conventions",
]


def contrib_for(core: str) -> str:
    """The opentelemetry-instrumentation* release made with a core release (1.39.0 -> 0.60b0)."""
    minor = int(core.split(".")[1])
    return f"0.{minor + 21}b0"


def _otel_pins(core: str, contrib: str) -> list[str]:
    return [
        f"opentelemetry-api=={core}",
        *(f"{name}=={core}" for name in OTEL_CORE),
        f"opentelemetry-instrumentation=={contrib}",
        *(f"{name}=={contrib}" for name in OTEL_CONTRIB),
    ]


# case -> (requirements replacing the test extra's, test paths)
CASES: dict[str, tuple[list[str], list[str]]] = {
    "openai-floor": ([_pin("openai")], OPENAI_TESTS),
    "openai-latest": ([declared("openai")], OPENAI_TESTS),
    "anthropic-floor": ([_pin("anthropic")], ANTHROPIC_TESTS),
    "anthropic-latest": ([declared("anthropic")], ANTHROPIC_TESTS),
    "gemini-floor": ([_pin("google-genai")], GEMINI_TESTS),
    "gemini-latest": ([declared("google-genai")], GEMINI_TESTS),
    "httpx-floor": ([_pin("httpx")], HTTPX_TESTS),
    "httpx-latest": ([declared("httpx")], HTTPX_TESTS),
    "wrapt-floor": ([_pin("wrapt")], WRAPT_TESTS),
    "wrapt-latest": ([declared("wrapt")], WRAPT_TESTS),
    "otel-floor": (
        _otel_pins(floor("opentelemetry-api"), floor("opentelemetry-instrumentation")),
        OTEL_TESTS,
    ),
    "otel-latest": (
        [declared(n) for n in ("opentelemetry-api", "opentelemetry-sdk")]
        + [declared("opentelemetry-instrumentation")],
        OTEL_TESTS,
    ),
}

# What a report row shows of each case's environment, and which case family sets which row
# of the README table.
SHOWN = [
    "openai",
    "anthropic",
    "google-genai",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation",
    "wrapt",
    "httpx",
    "httpx2",
]
TABLE_ROWS: list[tuple[str, str, list[str]]] = [
    # (case family, declared package, packages whose resolved versions the row shows)
    ("openai", "openai", ["openai"]),
    ("anthropic", "anthropic", ["anthropic"]),
    ("gemini", "google-genai", ["google-genai"]),
    ("otel", "opentelemetry-api", ["opentelemetry-api", "opentelemetry-sdk"]),
    ("otel", "opentelemetry-instrumentation", ["opentelemetry-instrumentation"]),
    ("wrapt", "wrapt", ["wrapt"]),
    ("httpx", "httpx", ["httpx"]),
]

_VERSIONS_SCRIPT = (
    "import importlib.metadata as m, json, platform\n"
    "found = {'python': platform.python_version()}\n"
    f"for p in {SHOWN!r}:\n"
    "    try: found[p] = m.version(p)\n"
    "    except m.PackageNotFoundError: pass\n"
    "print(json.dumps(found))"
)


def requirements(pins: list[str]) -> list[str]:
    """The test extra with the pinned packages' own requirements replaced by the pins."""
    pinned = {_name(p) for p in pins}
    test_extra = _pyproject()["optional-dependencies"]["test"]
    return [r for r in test_extra if _name(r) not in pinned] + pins


@nox.session
@nox.parametrize("case", list(CASES))
def matrix(session: nox.Session, case: str) -> None:
    pins, tests = CASES[case]
    _run(session, case, pins, tests)


@nox.session
def otel_at(session: nox.Session) -> None:
    """One OpenTelemetry core release, for bisecting a floor: ``OTEL_AT=1.41.0 nox -s otel_at``
    (the matching contrib release is derived; pytest arguments after ``--``)."""
    core = os.environ.get("OTEL_AT", floor("opentelemetry-api"))
    _run(session, None, _otel_pins(core, contrib_for(core)), OTEL_TESTS)


def _run(session: nox.Session, case: str | None, pins: list[str], tests: list[str]) -> None:
    report = REPORT_FLAG in session.posargs
    pytest_args = [a for a in session.posargs if a != REPORT_FLAG]
    if any(a.startswith("tests") for a in pytest_args):
        tests = []  # test paths given after --: run those instead
    # The project, the rest of the test extra and the pins resolved together in one step, so
    # a pin is never silently upgraded away by a later install.
    session.install("-e", ".", *requirements(pins))
    versions = json.loads(session.run("python", "-c", _VERSIONS_SCRIPT, silent=True))
    session.log("resolved: " + ", ".join(f"{k}=={v}" for k, v in versions.items()))
    started = time.monotonic()
    passed = False
    try:
        session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, *pytest_args)
        passed = True
    finally:
        if report and case is not None:
            seconds = time.monotonic() - started
            _record(case, pins, [*tests, *pytest_args], versions, passed, seconds)


# Other projects' GenAI instrumentations, for billing their spans (SPEC section 11). Newest
# releases: what a user installs today is what the normalisation must read.
FOREIGN_INSTRUMENTATIONS = [
    "opentelemetry-instrumentation-openai",  # OpenLLMetry
    "opentelemetry-instrumentation-anthropic",  # OpenLLMetry
    "openinference-instrumentation-openai",
    "openinference-instrumentation-anthropic",
    # The official ones exist only as pre-releases; naming one in the specifier allows it
    # without letting every other package (httpx) resolve to a pre-release too.
    "opentelemetry-instrumentation-genai-openai >= 1.3b0",
    "opentelemetry-instrumentation-genai-anthropic >= 1.3b0",
]


@nox.session
def foreign(session: nox.Session) -> None:
    """tests/foreign beside OpenLLMetry, OpenInference and the official GenAI instrumentations."""
    session.install("-e", ".[test]", *FOREIGN_INSTRUMENTATIONS)
    session.run(
        "python",
        "-c",
        "import importlib.metadata as m\n"
        f"for p in {[_name(r) for r in FOREIGN_INSTRUMENTATIONS] + ['openai', 'anthropic']!r}:\n"
        "    try: print(f'{p}=={m.version(p)}')\n"
        "    except m.PackageNotFoundError: print(f'{p}: not installed')",
    )
    tests = [] if any(a.startswith("tests") for a in session.posargs) else ["tests/foreign"]
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, *session.posargs)


# --- the report -----------------------------------------------------------------------


def _commit() -> str:
    """The commit tested, marked ``+changes`` when the work tree differs from it (apart from
    the files this report writes itself)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!README.md",
                ":!docs/tested-versions.*",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "unknown") + ("+changes" if dirty else "")


def _record(
    case: str,
    pins: list[str],
    tests: list[str],
    versions: dict[str, str],
    passed: bool,
    seconds: float,
) -> None:
    results = json.loads(REPORT_JSON.read_text()) if REPORT_JSON.exists() else {}
    results[case] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "commit": _commit(),
        "requirements": pins,
        "tests": tests,
        "versions": versions,
        "passed": passed,
        "test_seconds": round(seconds),
    }
    results = {name: results[name] for name in CASES if name in results}
    REPORT_JSON.parent.mkdir(exist_ok=True)
    REPORT_JSON.write_text(json.dumps(results, indent=2) + "\n")
    REPORT_MD.write_text(render_report(results))
    _update_readme(render_table(results))


def _outcome(result: dict | None, packages: list[str]) -> str:
    if result is None:
        return "not run"
    shown = " / ".join(result["versions"].get(p, "?") for p in packages)
    return shown if result["passed"] else f"{shown} **FAILED**"


def render_table(results: dict[str, dict]) -> str:
    """The README's table: per package, the declared range and what each end resolved to."""
    dates = sorted({r["date"] for r in results.values()})
    pythons = sorted({r["versions"].get("python", "?") for r in results.values()})
    span = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}" if dates else "never"
    lines = [
        f"Tested by `nox -s matrix -- --report` on {span}, Python {', '.join(pythons) or '?'}; "
        "every case, with the commit and the tests it ran, is in "
        "[docs/tested-versions.md](docs/tested-versions.md).",
        "",
        "| Package | Declared range | Oldest tested (`*-floor`) | Newest tested (`*-latest`) |",
        "|---|---|---|---|",
    ]
    for family, name, packages in TABLE_ROWS:
        # ">= low, < high", the way pyproject.toml writes it
        specifiers = sorted(Requirement(declared(name)).specifier, key=lambda s: s.operator[0])
        declared_range = ", ".join(str(s) for s in reversed(specifiers))
        low = _outcome(results.get(f"{family}-floor"), packages)
        high = _outcome(results.get(f"{family}-latest"), packages)
        lines.append(f"| {' / '.join(packages)} | `{declared_range}` | {low} | {high} |")
    return "\n".join(lines) + "\n"


def render_report(results: dict[str, dict]) -> str:
    """docs/tested-versions.md: every recorded case, as run."""
    lines = [
        "# Tested versions",
        "",
        "Written by `nox -s matrix -- --report` (see `noxfile.py`); do not edit by hand.",
        "A `*-floor` case pins the lowest release `pyproject.toml` declares, a `*-latest` case",
        "installs the declared range, so it resolves the newest release on the day of the run.",
        "",
        "| Case | Requirement | Resolved | Result | Tests | Test time | Date | Commit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case, r in results.items():
        resolved = ", ".join(f"{k} {v}" for k, v in r["versions"].items())
        lines.append(
            f"| {case} | `{'`, `'.join(r['requirements'])}` | {resolved} | "
            f"{'passed' if r['passed'] else '**failed**'} | {' '.join(r['tests'])} | "
            f"{r['test_seconds']} s | {r['date']} | {r['commit']} |"
        )
    return "\n".join(lines) + "\n"


def _update_readme(table: str) -> None:
    text = README.read_text()
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        return  # no markers: the report files alone
    README.write_text(text[: start + len(README_BEGIN)] + "\n" + table + text[end:])
