"""One LLM call's span: start it, collect what the response says, finish exactly once.

Provider hooks set plain fields on the invocation (tokens, ids, finish
reasons); ``finish()`` turns them into span attributes and metric points in
one place, whichever way the call ended (response, error, stream end, close,
garbage collection).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import billing, pricing
from . import semconv as sc
from .logs import log_internal_error
from .version import __version__

if TYPE_CHECKING:
    from .targets import RequestInfo
    from .telemetry import Telemetry

_ID_GENERATOR = RandomIdGenerator()


def error_type(exc: BaseException) -> str:
    """The ``error.type`` value: the exception class's qualified name."""
    return type(exc).__qualname__


class Invocation:
    """The span of one call and the usage collected for it."""

    __slots__ = (
        "_finished",
        "_lock",
        "_unsampled",
        "cache_read_tokens",
        "cache_write_tokens",
        "finish_reasons",
        "first_chunk_ns",
        "hide_usage_chunk",
        "input_tokens",
        "metric_attributes",
        "output_tokens",
        "reasoning_tokens",
        "reported_cost",
        "response_id",
        "response_model",
        "span",
        "start_ns",
        "telemetry",
        "usage_complete",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        operation: str,
        request: RequestInfo,
        customer_id: str | None,
        metadata: dict[str, str],
    ) -> None:
        self.telemetry = telemetry
        self._finished = False
        self._lock = threading.Lock()
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cache_read_tokens: int | None = None
        self.cache_write_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        self.reported_cost: pricing.Reported | None = None  # OpenRouter's usage.cost
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.finish_reasons: list[str] | None = None
        self.first_chunk_ns: int | None = None
        self.hide_usage_chunk = request.hide_usage_chunk
        # Set where the provider's final usage report is read; a failed call is never complete.
        self.usage_complete = False

        model = request.model
        attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: operation,
            sc.GEN_AI_PROVIDER_NAME: request.provider_name,
        }
        if model:
            attributes[sc.GEN_AI_REQUEST_MODEL] = model
        if request.server_address:
            attributes[sc.SERVER_ADDRESS] = request.server_address
            if request.server_port:
                attributes[sc.SERVER_PORT] = request.server_port
        # Low-cardinality copy for metrics: never the customer.
        self.metric_attributes = dict(attributes)
        if request.streaming:
            attributes[sc.GEN_AI_REQUEST_STREAM] = True
        if request.attributes:
            attributes.update(request.attributes)
        if customer_id is not None:
            attributes[sc.CMDRDATA_CUSTOMER_ID] = customer_id
        for key, value in metadata.items():
            attributes[sc.CMDRDATA_METADATA_PREFIX + key] = value

        name = f"{operation} {model}" if model else operation
        self.span = span = telemetry.tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=attributes
        )
        self.start_ns = time.perf_counter_ns()
        # A span the sampler dropped keeps nothing; keep what billing needs.
        self._unsampled: _UnsampledCall | None = (
            None if span.is_recording() else _UnsampledCall(name, attributes)
        )

    @property
    def finished(self) -> bool:
        return self._finished

    def mark_first_chunk(self) -> None:
        if self.first_chunk_ns is None:
            self.first_chunk_ns = time.perf_counter_ns()

    def add_finish_reason(self, reason: Any) -> None:
        if reason is None:
            return
        if self.finish_reasons is None:
            self.finish_reasons = []
        self.finish_reasons.append(str(getattr(reason, "value", reason)))

    def finish(self, error: BaseException | None = None) -> None:
        """End the span once; later calls do nothing. Never raises."""
        if self._finished or not self._lock.acquire(blocking=False):
            return
        try:
            if self._finished:
                return
            self._finished = True
            self._end(error)
        except Exception as exc:  # an error of ours must never reach the caller
            log_internal_error("finishing the span", exc)
        finally:
            self._lock.release()

    def _end(self, error: BaseException | None) -> None:
        end_ns = time.perf_counter_ns()
        span = self.span
        attributes: dict[str, Any] = {}
        if self.response_model:
            attributes[sc.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.response_id:
            attributes[sc.GEN_AI_RESPONSE_ID] = self.response_id
        if self.finish_reasons:
            attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(self.finish_reasons)
        if self.input_tokens is not None:
            attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = self.input_tokens
        if self.output_tokens is not None:
            attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = self.output_tokens
        if self.cache_read_tokens is not None:
            attributes[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = self.cache_read_tokens
        if self.cache_write_tokens is not None:
            attributes[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = self.cache_write_tokens
        if self.reasoning_tokens is not None:
            attributes[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = self.reasoning_tokens
        if self.first_chunk_ns is not None:
            attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (
                self.first_chunk_ns - self.start_ns
            ) / 1e9
        err_type = error_type(error) if error is not None else None
        if err_type is not None:
            attributes[sc.ERROR_TYPE] = err_type
        attributes[sc.CMDRDATA_USAGE_COMPLETE] = self.usage_complete and err_type is None
        pricer = self.telemetry.pricer
        if pricer is not None:
            known = self.metric_attributes
            pricing.add_span_cost(
                pricer,
                attributes,
                known.get(sc.GEN_AI_PROVIDER_NAME),
                known.get(sc.GEN_AI_REQUEST_MODEL),
                self.reported_cost,
            )
        span.set_attributes(attributes)
        if err_type is not None:
            span.set_status(Status(StatusCode.ERROR, err_type))
        sinks = billing.sinks()
        unsampled = self._unsampled
        if sinks and unsampled is None:
            billing.claim(sinks, span)
        span.end()
        if sinks:
            if self.telemetry.awaiting_provider:
                self.telemetry.attach_span_processor()
            billing.bill_directly(
                sinks,
                span
                if unsampled is None
                else unsampled.finished_span(span, attributes, err_type, self.telemetry),
            )
        self._record_metrics((end_ns - self.start_ns) / 1e9, err_type)

    def _record_metrics(self, duration_s: float, err_type: str | None) -> None:
        telemetry = self.telemetry
        if not telemetry.records_metrics():
            return
        attributes = self.metric_attributes
        if self.response_model:
            attributes[sc.GEN_AI_RESPONSE_MODEL] = self.response_model
        if err_type is not None:
            attributes[sc.ERROR_TYPE] = err_type
        telemetry.duration_histogram.record(duration_s, attributes)
        if self.input_tokens is not None:
            telemetry.token_histogram.record(
                self.input_tokens, {**attributes, sc.GEN_AI_TOKEN_TYPE: "input"}
            )
        if self.output_tokens is not None:
            telemetry.token_histogram.record(
                self.output_tokens, {**attributes, sc.GEN_AI_TOKEN_TYPE: "output"}
            )


class _UnsampledCall:
    """What a sampled-out call needs to be billed like any other: name, attributes, times."""

    __slots__ = ("attributes", "name", "start_time")

    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self.name = name
        self.attributes = attributes
        self.start_time = time.time_ns()

    def finished_span(
        self,
        span: Any,
        end_attributes: dict[str, Any],
        err_type: str | None,
        telemetry: Telemetry,
    ) -> Any:
        """A finished span record with the call's own ids, for the billing sinks only."""
        context = span.get_span_context()
        if not context.is_valid:
            # No SDK tracer provider: make ids of our own, so the event id is unique.
            ids = _ID_GENERATOR
            context = trace.SpanContext(
                ids.generate_trace_id(), ids.generate_span_id(), is_remote=False
            )
        provider = telemetry.tracer_provider or trace.get_tracer_provider()
        return ReadableSpan(
            self.name,
            context=context,
            resource=getattr(provider, "resource", None),
            attributes={**self.attributes, **end_attributes},
            kind=SpanKind.CLIENT,
            status=Status(StatusCode.ERROR, err_type) if err_type else Status(StatusCode.UNSET),
            start_time=self.start_time,
            end_time=time.time_ns(),
            instrumentation_scope=InstrumentationScope(sc.SCOPE_NAME, __version__),
        )
