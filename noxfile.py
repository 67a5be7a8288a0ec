"""Supported-version matrix: the oldest and newest releases of each supported dependency.

    pip install nox          # once; nox stays out of the test extra (CI's .ci/run does not need it)
    nox -s matrix            # every case below, one fresh virtualenv each (under .nox/)
    nox -s "matrix(case='openai-floor')"   # one case
    nox -l                   # list the cases

Each case installs the project with its ``test`` extra, except that the packages the case is
about are pinned (replacing the extra's own requirement for them), then runs the tests that
exercise them. "floor" pins the lowest release the project declares; "latest" lets the resolver
pick the newest release inside the declared range. With ``uv`` on PATH the installs are much
faster (``pip install nox uv``); nox falls back to virtualenv + pip otherwise.

Extra pytest arguments go after ``--``: ``nox -s matrix -- -x -q``.

``nox -s foreign`` runs ``tests/foreign`` with other projects' GenAI instrumentations installed
(OpenLLMetry, OpenInference, the official OpenTelemetry ones). They register entry points that
``opentelemetry-instrument`` would load, so they live only in that session's virtualenv, never in
the main test environment.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["matrix", "foreign"]  # plain `nox` runs both; otel_at is on demand

# The declared ranges (pyproject: dependencies and the instruments-any extra).
OPENAI_FLOOR = "2.0.0"
ANTHROPIC_FLOOR = "1.0.0"
GENAI_FLOOR = "1.30.0"
OTEL_FLOOR = "1.39.0"  # opentelemetry-api/-sdk and the other 1.x packages


def contrib_for(core: str) -> str:
    """The opentelemetry-instrumentation* release made with a core release (1.39.0 -> 0.60b0)."""
    minor = int(core.split(".")[1])
    return f"0.{minor + 21}b0"


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
# The OpenTelemetry floor touches everything: the instrumentor, the exporter, auto
# instrumentation, sampling and metrics. Run all of it but the soak.
OTEL_TESTS = ["tests"]


def _otel_pins(api: str, contrib: str) -> list[str]:
    return [
        f"opentelemetry-api=={api}",
        f"opentelemetry-sdk=={api}",
        f"opentelemetry-proto=={api}",
        f"opentelemetry-exporter-otlp-proto-http=={api}",
        f"opentelemetry-instrumentation=={contrib}",
        f"opentelemetry-instrumentation-httpx=={contrib}",
        f"opentelemetry-distro=={contrib}",
        f"opentelemetry-semantic-conventions=={contrib}",
    ]


# case -> (requirements replacing the test extra's, test paths)
CASES: dict[str, tuple[list[str], list[str]]] = {
    "openai-floor": ([f"openai=={OPENAI_FLOOR}"], OPENAI_TESTS),
    "openai-latest": (["openai>=2.0.0,<4"], OPENAI_TESTS),
    "anthropic-floor": ([f"anthropic=={ANTHROPIC_FLOOR}"], ANTHROPIC_TESTS),
    "anthropic-latest": (["anthropic>=1.0.0,<3"], ANTHROPIC_TESTS),
    "gemini-floor": ([f"google-genai=={GENAI_FLOOR}"], GEMINI_TESTS),
    "gemini-latest": (["google-genai>=1.30.0,<4"], GEMINI_TESTS),
    "otel-floor": (_otel_pins(OTEL_FLOOR, contrib_for(OTEL_FLOOR)), OTEL_TESTS),
    "otel-latest": (
        [
            "opentelemetry-api>=1.39.0",
            "opentelemetry-sdk>=1.39.0",
            "opentelemetry-instrumentation>=0.60b0",
        ],
        OTEL_TESTS,
    ),
}


def _name(requirement: str) -> str:
    """The normalised project name of a requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def _test_extra() -> list[str]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    with open(ROOT / "pyproject.toml", "rb") as f:
        data = tomllib.load(f)
    return list(data["project"]["optional-dependencies"]["test"])


def requirements(pins: list[str]) -> list[str]:
    """The test extra with the pinned packages' own requirements replaced by the pins."""
    pinned = {_name(p) for p in pins}
    return [r for r in _test_extra() if _name(r) not in pinned] + pins


@nox.session
@nox.parametrize("case", list(CASES))
def matrix(session: nox.Session, case: str) -> None:
    pins, tests = CASES[case]
    _run(session, pins, tests)


@nox.session
def otel_at(session: nox.Session) -> None:
    """One OpenTelemetry core release, for bisecting a floor: ``OTEL_AT=1.41.0 nox -s otel_at``
    (the matching contrib release is derived; pytest arguments after ``--``)."""
    import os

    core = os.environ.get("OTEL_AT", OTEL_FLOOR)
    _run(session, _otel_pins(core, contrib_for(core)), OTEL_TESTS)


def _run(session: nox.Session, pins: list[str], tests: list[str]) -> None:
    if any(a.startswith("tests") for a in session.posargs):
        tests = []  # test paths given after --: run those instead
    # The project, the rest of the test extra and the pins resolved together in one step, so
    # a pin is never silently upgraded away by a later install.
    session.install("-e", ".", *requirements(pins))
    session.run(
        "python",
        "-c",
        "import importlib.metadata as m\n"
        "for p in ('openai','anthropic','google-genai','opentelemetry-api','opentelemetry-sdk',"
        "'opentelemetry-instrumentation','httpx','httpx2'):\n"
        "    try: print(f'{p}=={m.version(p)}')\n"
        "    except m.PackageNotFoundError: print(f'{p}: not installed')",
    )
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, *session.posargs)


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
