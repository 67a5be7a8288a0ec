"""Span -> cmdrdata usage event (SPEC section 5), as pure functions.

Spans come from code we do not control (other instrumentations, ``span_source=genai``), so every
attribute is read defensively: a mistyped or absurd value never raises, it becomes the safe value
(0 tokens, ``None``) and is counted in ``Drops``. Customer ids are validated where they enter
(``customer_context``); here they are held to the same rules, trimmed, and billed otherwise
unchanged: clipping one would bill a different customer, so an id over 256 characters is only
counted. One that no ``customer_context`` would accept (blank, not a string, a control
character inside) goes to the default customer and is counted; no log line ever shows it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from cmdrdata_exporter.diagnostics import DEFAULT_DROPS, Drops
from cmdrdata_exporter.foreign import foreign_view, is_ours
from opentelemetry_instrumentation_cmdrdata import pricing

try:
    from opentelemetry_instrumentation_cmdrdata import semconv
except Exception:  # pragma: no cover - only while the sibling package is mid-edit
    import importlib.util
    import pathlib

    _path = pathlib.Path(__file__).parent.parent / "opentelemetry_instrumentation_cmdrdata"
    _spec = importlib.util.spec_from_file_location("_cmdrdata_semconv", _path / "semconv.py")
    semconv = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
    _spec.loader.exec_module(semconv)  # type: ignore[union-attr]

MAX_TOKENS = 2**53  # beyond this a JSON number loses precision in most servers
MAX_STRING = 1024  # metadata strings, model names, ids
MAX_METADATA_KEYS = 64
MAX_CUSTOMER_ID = 256
_NAMESPACE_BYTES = uuid.UUID("6f1d3c52-8d0e-5b7a-9c41-0d6a3e2f7b19").bytes
# Unicode category Cc, which customer_context refuses inside an id.
_CONTROL_PATTERN = re.compile("[\x00-\x1f\x7f-\x9f]")

PROVIDER_ALIASES = {"gemini": semconv.PROVIDER_GEMINI, "vertex_ai": semconv.PROVIDER_VERTEX_AI}
_PREFIX = semconv.CMDRDATA_METADATA_PREFIX
_PREFIX_LEN = len(_PREFIX)
_USAGE_KEYS = (
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
)


class EventSettings(Protocol):
    default_customer_id: str
    span_source: str


def customer_attributes(settings: EventSettings) -> tuple[str, ...]:
    """Where a foreign span keeps its customer (``CMDRDATA_CUSTOMER_ATTRIBUTES``)."""
    return getattr(settings, "customer_attributes", None) or (semconv.CMDRDATA_CUSTOMER_ID,)


def event_id_for(trace_id: int, span_id: int) -> str:
    """Stable per span, so re-exports and retries carry the same Idempotency-Key.

    The UUIDv5 of the trace and span ids, built by hand: ``uuid.uuid5`` costs about a
    fifth of a span's whole conversion.
    """
    digest = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + b"%032x%016x" % (trace_id, span_id)).digest()
    )
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def iso_millis(ns: int) -> str:
    """Nanoseconds since the epoch -> ``2026-11-27T10:34:08.166Z``."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1_000_000:03d}Z"


def event_end(body: str) -> float | None:
    """The call's end (the event's ``timestamp``) read back from an encoded body, in seconds.

    A string search, not a JSON parse: it runs for each delivered event when metrics are on.
    """
    at = body.find(_TIMESTAMP_KEY)
    if at < 0:
        return None
    start = at + len(_TIMESTAMP_KEY)
    try:
        end = datetime.fromisoformat(body[start : start + 23])
    except ValueError:
        return None
    return end.replace(tzinfo=timezone.utc).timestamp()


_TIMESTAMP_KEY = '"timestamp":"'


def cmdrdata_provider(provider_name: str) -> str:
    """cmdrdata's provider name: ``google`` for every ``gcp.*``, else the semconv name."""
    return "google" if provider_name.startswith("gcp.") else provider_name


def is_billable(span: ReadableSpan, span_source: str) -> bool:
    attrs = span.attributes or {}
    if semconv.GEN_AI_OPERATION_NAME not in attrs:
        return False
    if span_source == "genai":
        return any(key in attrs for key in _USAGE_KEYS)
    scope = span.instrumentation_scope
    return scope is not None and scope.name == semconv.SCOPE_NAME


class _Reader:
    """Typed reads of one span's attributes that count, never raise."""

    __slots__ = ("attrs", "drops")

    def __init__(self, attrs: Mapping[str, Any], drops: Drops):
        self.attrs = attrs
        self.drops = drops

    def tokens(self, *names: str) -> int:
        for name in names:
            value = self.attrs.get(name)
            if value is None:
                continue
            if type(value) is int and 0 <= value <= MAX_TOKENS:
                return value
            self.drops.count(
                "bad_token_value",
                f"span attribute {name} is not a token count ({type(value).__name__}); billed as 0",
            )
            return 0
        return 0

    def text(self, name: str, kind: str = "bad_string") -> str | None:
        value = self.attrs.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self.drops.count(kind, f"span attribute {name} is not a string; ignored")
            return None
        return clip(value, self.drops, name)


def clip(value: str, drops: Drops, name: str) -> str:
    if len(value) <= MAX_STRING:
        return value
    drops.count("clipped_string", f"{name} longer than {MAX_STRING} characters was clipped")
    return value[:MAX_STRING]


def _json_value(value: Any, drops: Drops, name: str) -> Any:
    """An attribute value as JSON that every server parses (no NaN, no surprises)."""
    if isinstance(value, str):
        return clip(value, drops, name)
    if isinstance(value, float) and not math.isfinite(value):
        drops.count("bad_metadata_value", f"{name} is not a finite number; sent as null")
        return None
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_json_value(item, drops, name) for item in value[:MAX_METADATA_KEYS]]
    drops.count("bad_metadata_value", f"{name} has an unsupported type; sent as text")
    return clip(str(value), drops, name)


def _provider_name(read: _Reader) -> str | None:
    name = read.text(semconv.GEN_AI_PROVIDER_NAME) or read.text(semconv.GEN_AI_SYSTEM)
    if name is None:
        return None
    return PROVIDER_ALIASES.get(name, name)


def _ms(seconds: Any) -> int | None:
    if type(seconds) in (int, float) and math.isfinite(seconds) and 0 <= seconds < 1e9:
        return round(seconds * 1000)
    return None


def usage_complete(attrs: Mapping[str, Any], error_type: str | None) -> bool:
    """Whether the provider reported the call's usage in full (SPEC section 3).

    Never for a failed call. Our spans say so in ``cmdrdata.usage.complete``. A span
    without it (another instrumentation's, with ``span_source=genai``, or an older
    version of ours) is taken as complete when the call did not fail and carries
    usage: such spans do not tell an aborted stream from a finished one.
    """
    if error_type is not None:
        return False
    flag = attrs.get(semconv.CMDRDATA_USAGE_COMPLETE)
    if isinstance(flag, bool):
        return flag
    return any(key in attrs for key in _USAGE_KEYS)


def span_to_event(
    span: ReadableSpan, settings: EventSettings, drops: Drops | None = None
) -> dict[str, Any] | None:
    """The usage event of one span, or None when the span is not a billable call."""
    drops = DEFAULT_DROPS if drops is None else drops
    try:
        if settings.span_source == "genai" and not is_ours(span):
            span = foreign_view(span, customer_attributes(settings))  # type: ignore[assignment]
            if span is None:
                return None
        if not is_billable(span, settings.span_source):
            return None
        return _convert(span, settings, drops)
    except Exception as exc:  # a bug of ours must not cost the batch
        drops.count("conversion_error", f"could not convert a span ({type(exc).__name__})")
        return None


def _convert(span: ReadableSpan, settings: EventSettings, drops: Drops) -> dict[str, Any]:
    attrs = span.attributes or {}
    read = _Reader(attrs, drops)
    ctx = span.context
    trace_id, span_id = (ctx.trace_id, ctx.span_id) if ctx is not None else (0, 0)
    start, end = span.start_time, span.end_time
    if end is None:
        drops.count("unended_span", "a span without an end time was billed at export time")
        end = time.time_ns()
    start = end if start is None else start

    provider_name = _provider_name(read)
    if provider_name is None:
        drops.count("missing_provider", "a GenAI span has no provider name; billed as 'unknown'")
    request_model = read.text(semconv.GEN_AI_REQUEST_MODEL)
    model = read.text(semconv.GEN_AI_RESPONSE_MODEL) or request_model
    if not model:
        drops.count("missing_model", "a GenAI span has no model; billed as 'unknown'")

    customer = _customer(attrs.get(semconv.CMDRDATA_CUSTOMER_ID), drops)
    if customer is None:
        customer = settings.default_customer_id

    input_tokens = read.tokens(semconv.GEN_AI_USAGE_INPUT_TOKENS, "gen_ai.usage.prompt_tokens")
    output_tokens = read.tokens(
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS, "gen_ai.usage.completion_tokens"
    )
    reasons = attrs.get(semconv.GEN_AI_RESPONSE_FINISH_REASONS)
    if isinstance(reasons, str):
        reasons = (reasons,)
    if not isinstance(reasons, (tuple, list)):
        reasons = ()
    error_type = read.text(semconv.ERROR_TYPE) or None  # "" names no error
    if error_type is None and span.status.status_code is StatusCode.ERROR:
        error_type = "_OTHER"
    stream = attrs.get(semconv.GEN_AI_REQUEST_STREAM)
    resource = span.resource.attributes if span.resource is not None else {}
    service = resource.get("service.name")

    event_id = event_id_for(trace_id, span_id)
    metadata: dict[str, Any] = {
        "event_id": event_id,
        "operation": read.text(semconv.GEN_AI_OPERATION_NAME),
        "provider_name": provider_name,
        "request_model": request_model,
        "response_id": read.text(semconv.GEN_AI_RESPONSE_ID),
        "cache_read_input_tokens": read.tokens(semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
        "cache_write_input_tokens": read.tokens(
            semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
            semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        ),
        "reasoning_output_tokens": read.tokens(semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS),
        "streaming": stream is True,
        "duration_ms": max(0, round((end - start) / 1_000_000)),
        "time_to_first_chunk_ms": _ms(attrs.get(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)),
        "finish_reasons": [clip(r, drops, "finish reason") for r in reasons if isinstance(r, str)],
        "error_type": error_type,
        "usage_complete": usage_complete(attrs, error_type),
        "trace_id": f"{trace_id:032x}",
        "span_id": f"{span_id:016x}",
        "service_name": clip(service, drops, "service.name") if isinstance(service, str) else None,
    }
    cost = pricing.event_cost(
        pricing.pricer_for(getattr(settings, "cost", True), getattr(settings, "prices_file", None)),
        attrs,
        provider_name,
        model,
        request_model,
        (
            input_tokens,
            output_tokens,
            metadata["cache_read_input_tokens"],
            metadata["cache_write_input_tokens"],
            metadata["reasoning_output_tokens"],
        ),
        start,
    )
    if cost is not None:
        metadata["cost_usd"] = cost.text()
        metadata["cost_source"] = cost.source
    _merge_customer_metadata(attrs, metadata, drops)
    return {
        "customer_id": customer,
        "model": model or "unknown",
        "provider": cmdrdata_provider(provider_name) if provider_name else "unknown",
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "timestamp": iso_millis(end),
        "metadata": metadata,
    }


def _customer(value: Any, drops: Drops) -> str | None:
    """The span's customer id, trimmed, or None when the call goes to the default customer.

    The drop messages name the problem, never the id: it may be personal data.
    """
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        drops.count("bad_customer_id", "a span's customer id is not a non-empty string")
        return None
    customer = value.strip()
    if _CONTROL_PATTERN.search(customer):
        drops.count(
            "control_customer_id",
            "a span's customer id contains a control character (newline, NUL, ...); "
            "billed to the default customer",
        )
        return None
    if len(customer) > MAX_CUSTOMER_ID:
        drops.count(
            "long_customer_id",
            f"a customer id longer than {MAX_CUSTOMER_ID} characters was billed unchanged",
        )
    return customer


def _merge_customer_metadata(
    attrs: Mapping[str, Any], metadata: dict[str, Any], drops: Drops
) -> None:
    """Add ``cmdrdata.metadata.*`` entries; ours win every clash."""
    added = 0
    for name, value in attrs.items():
        if not name.startswith(_PREFIX):
            continue
        key = name[_PREFIX_LEN:]
        if not key or key in metadata:
            continue
        if added >= MAX_METADATA_KEYS or len(key) > MAX_STRING:
            drops.count(
                "dropped_metadata",
                f"customer metadata beyond {MAX_METADATA_KEYS} keys (or with a huge key) dropped",
            )
            continue
        metadata[key] = _json_value(value, drops, name)
        added += 1


class RecentIds:
    """A bounded memory of (provider, response id) pairs already billed (``genai`` source)."""

    def __init__(self, capacity: int = 100_000):
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._capacity = capacity

    def add(self, key: tuple[str, str]) -> bool:
        """Remember ``key``; False when it was already there."""
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True


def spans_to_events(
    spans: Sequence[ReadableSpan] | Iterable[ReadableSpan],
    settings: EventSettings,
    drops: Drops | None = None,
    recent: RecentIds | None = None,
) -> list[dict[str, Any]]:
    """Convert a batch; with ``span_source=genai`` bill each call once.

    Two instrumentations of one call share provider and response id. Within a batch our own
    scope's span wins; across batches the first one billed wins (``recent``).
    """
    events = [(span, span_to_event(span, settings, drops)) for span in spans]
    if settings.span_source != "genai":
        return [event for _, event in events if event is not None]
    ours = [
        (
            span.instrumentation_scope is None
            or span.instrumentation_scope.name != semconv.SCOPE_NAME,
            i,
        )
        for i, (span, _) in enumerate(events)
    ]
    recent = recent if recent is not None else RecentIds()
    kept: list[dict[str, Any]] = []
    for _, index in sorted(ours):
        event = events[index][1]
        if event is None:
            continue
        meta = event["metadata"]
        if meta["response_id"] and not recent.add((meta["provider_name"], meta["response_id"])):
            continue
        kept.append(event)
    return kept


# One encoder: json.dumps with any non-default option builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def encode(event: Mapping[str, Any]) -> str:
    """The request body; ASCII-only so it stores and sends without encoding surprises."""
    return _ENCODER.encode(event)
