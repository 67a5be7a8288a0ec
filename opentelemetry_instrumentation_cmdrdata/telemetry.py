"""The tracer, meter instruments and settings an instrumentor run shares.

Resolved once at ``instrument()`` time so the per-call path does no lookups.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace

from . import pricing, semconv, span_processor
from .version import __version__

_log = logging.getLogger("opentelemetry_instrumentation_cmdrdata")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

# Advisory bucket boundaries of the GenAI metric conventions.
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip


def genai_mode() -> bool:
    """``CMDRDATA_SPAN_SOURCE=genai``, read as the exporter's settings read it (trimmed, any
    case); anything else is the default ``instrumentor`` (the exporter warns about bad values)."""
    return os.environ.get("CMDRDATA_SPAN_SOURCE", "").strip().lower() == "genai"


def env_flag(name: str, default: bool) -> bool:
    """Read a boolean environment variable; a bad value is logged and ignored."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    _log.warning(
        "%s=%r is not a boolean (use true or false); using the default %s",
        name,
        raw[:40],
        str(default).lower(),
    )
    return default


@dataclass(slots=True)
class Telemetry:
    """Everything an invocation needs, bound once per ``instrument()``."""

    tracer: trace.Tracer
    token_histogram: Any
    duration_histogram: Any
    inject_stream_usage: bool
    tracer_provider: Any = None
    active: bool = True
    metrics_off: bool = False  # a no-op MeterProvider: it never records
    pricer: pricing.Pricer | None = None  # None: CMDRDATA_COST=false
    span_processor: span_processor.CmdrDataSpanProcessor | None = None
    # instrument() found no SDK TracerProvider yet: attach ours when a call finds one.
    awaiting_provider: bool = False
    # CMDRDATA_SPAN_SOURCE=genai: our processor copies the customer onto foreign spans.
    genai: bool = False

    def records_metrics(self) -> bool:
        """False while a point would go nowhere: no MeterProvider set yet, or a no-op one.

        The API's proxy instruments forward once a MeterProvider is set, so this is asked
        per call; it saves building the points' attribute sets when metrics are off.
        """
        if self.metrics_off:
            return False
        histogram = self.duration_histogram
        return getattr(histogram, "_real_instrument", histogram) is not None

    def attach_span_processor(self) -> None:
        """Put our span processor on the given TracerProvider, else on the global one as soon
        as the app has set an SDK provider (asked per billed call until then)."""
        provider = self.tracer_provider
        processor = span_processor.attach(
            provider if provider is not None else trace.get_tracer_provider()
        )
        if processor is not None and self.active:
            processor.active = True
            processor.copy_attribution = self.genai
            self.span_processor = processor
        self.awaiting_provider = processor is None and provider is None and self.active

    def detach_span_processor(self) -> None:
        """The SDK cannot remove a processor: make ours inert."""
        self.awaiting_provider = False
        if self.span_processor is not None:
            self.span_processor.active = False
            self.span_processor.copy_attribution = False


def build_telemetry(tracer_provider: Any = None, meter_provider: Any = None) -> Telemetry:
    tracer = trace.get_tracer(
        semconv.SCOPE_NAME,
        __version__,
        tracer_provider,
        schema_url="https://opentelemetry.io/schemas/1.37.0",
    )
    meter = metrics.get_meter(semconv.SCOPE_NAME, __version__, meter_provider)
    token_histogram = meter.create_histogram(
        semconv.METRIC_TOKEN_USAGE,
        unit="{token}",
        description="Number of input and output tokens used per GenAI call",
        explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
    )
    duration_histogram = meter.create_histogram(
        semconv.METRIC_OPERATION_DURATION,
        unit="s",
        description="Duration of GenAI client operations",
        explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
    )
    return Telemetry(
        tracer=tracer,
        token_histogram=token_histogram,
        duration_histogram=duration_histogram,
        inject_stream_usage=env_flag("CMDRDATA_INJECT_STREAM_USAGE", True),
        tracer_provider=tracer_provider,
        genai=genai_mode(),
        metrics_off=isinstance(duration_histogram, metrics.NoOpHistogram),
        pricer=pricing.pricer_for(
            env_flag("CMDRDATA_COST", True), os.environ.get("CMDRDATA_PRICES_FILE") or None
        ),
    )
