"""Run a Python script under ``opentelemetry-instrument`` in a clean environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "PLAIN_APP",
    "app_results",
    "clean_env",
    "opentelemetry_instrument",
    "run_instrumented",
    "spool_status",
]

PLAIN_APP = Path(__file__).with_name("plain_app.py")
ROOT = Path(__file__).resolve().parents[2]

# Variables that would leak the developer's own set-up (or real keys) into a child process.
_PREFIXES = ("OTEL_", "CMDRDATA_", "OPENAI_", "ANTHROPIC_", "GOOGLE_", "GEMINI_")


def clean_env(**values: str) -> dict[str, str]:
    """``os.environ`` without OpenTelemetry, cmdrdata or provider settings, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(values)
    return env


def opentelemetry_instrument() -> str:
    """The ``opentelemetry-instrument`` of the Python running the tests."""
    beside = Path(sys.executable).with_name("opentelemetry-instrument")
    found = str(beside) if beside.exists() else shutil.which("opentelemetry-instrument")
    if found is None:
        raise RuntimeError("opentelemetry-instrument not found: pip install opentelemetry-distro")
    return found


def run_instrumented(
    script: Path | str,
    env: dict[str, str],
    *,
    flags: tuple[str, ...] = (),
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """``opentelemetry-instrument [flags] python script`` and its output (exit code unchecked).

    The interpreter is passed by absolute path: ``opentelemetry-instrument`` looks a bare
    ``python`` up on ``PATH``, which may not be this virtualenv's.
    """
    return subprocess.run(
        [opentelemetry_instrument(), *flags, sys.executable, str(script)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def app_results(completed: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The JSON list that ``plain_app.py`` prints last, after checking that it exited 0."""
    assert completed.returncode == 0, f"app failed:\n{completed.stdout}\n{completed.stderr}"
    lines = completed.stdout.strip().splitlines()
    assert lines, f"app printed nothing:\n{completed.stderr}"
    return json.loads(lines[-1])


def spool_status(env: dict[str, str]) -> str:
    """``cmdrdata-exporter status`` for the spool in ``env``: for failure messages."""
    completed = subprocess.run(
        [sys.executable, "-m", "cmdrdata_exporter", "status"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return f"cmdrdata-exporter status:\n{completed.stdout}{completed.stderr}"
