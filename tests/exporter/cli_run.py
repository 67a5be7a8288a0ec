"""Run ``cmdrdata-exporter`` as a subprocess, the way an operator does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.servers.cmdrdata_server import TEST_API_KEY

ROOT = Path(__file__).resolve().parents[2]


def run_cli(
    *args: str, endpoint: str, spool_dir: Path, key: str = TEST_API_KEY, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m cmdrdata_exporter ARGS`` with only the given ``CMDRDATA_*`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMDRDATA_")}
    env.update(
        CMDRDATA_API_KEY=key,
        CMDRDATA_ENDPOINT=endpoint,
        CMDRDATA_SPOOL_DIR=str(spool_dir),
        CMDRDATA_TIMEOUT="2",
    )
    return subprocess.run(
        [sys.executable, "-m", "cmdrdata_exporter", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def error_lines(stderr: str) -> list[str]:
    """The ERROR log lines (the CLI logs as ``LEVEL message``)."""
    return [line for line in stderr.splitlines() if line.startswith("ERROR")]
