"""What the oldest supported OpenTelemetry releases lack, for tests to skip cleanly."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import pytest
from packaging.version import Version


def httpx2_instrumentor() -> Any:
    """``HTTPX2ClientInstrumentor`` (opentelemetry-instrumentation-httpx >= 0.65b0), or skip."""
    try:
        from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor
    except ImportError:
        pytest.skip("opentelemetry-instrumentation-httpx < 0.65b0 cannot instrument httpx2")
    return HTTPX2ClientInstrumentor


def otel_api_at_least(wanted: str) -> bool:
    return Version(version("opentelemetry-api")) >= Version(wanted)
