"""Spans other instrumentations made, read with SPEC section 4's meaning (``genai`` mode).

OpenLLMetry, OpenInference, the official OpenTelemetry GenAI instrumentations and older
releases of each name the same numbers differently. ``normalise`` maps their names onto ours
before conversion, so ``events._convert`` only ever reads one vocabulary. What each one puts in
its numbers (checked against the real packages in ``tests/foreign``): input includes cached
tokens and output includes reasoning tokens, for OpenAI and Anthropic alike, in OpenLLMetry
0.62, OpenInference (openai 0.1.66, anthropic 3.1) and the official ``genai`` 1.3b0. Where a
span's input is smaller than its own cache counts it cannot include them (an instrumentation
that copies Anthropic's raw ``input_tokens``), and they are added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.trace import Status

from opentelemetry_instrumentation_cmdrdata import semconv

# (our name, then the names others use for it, in order of preference)
_RENAMES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        semconv.GEN_AI_REQUEST_MODEL,
        ("llm.request.model_name", "llm.model_name", "embedding.model_name"),
    ),
    (semconv.GEN_AI_RESPONSE_MODEL, ("llm.response.model_name", "llm.model_name")),
    (semconv.GEN_AI_USAGE_INPUT_TOKENS, ("gen_ai.usage.prompt_tokens", "llm.token_count.prompt")),
    (
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
        ("gen_ai.usage.completion_tokens", "llm.token_count.completion"),
    ),
    (
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        ("gen_ai.usage.cache_read_input_tokens", "llm.token_count.prompt_details.cache_read"),
    ),
    (
        semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
        (
            semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
            "gen_ai.usage.cache_creation_input_tokens",
            "llm.token_count.prompt_details.cache_write",
        ),
    ),
    (
        semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        ("gen_ai.usage.reasoning_tokens", "llm.token_count.completion_details.reasoning"),
    ),
)
_PROVIDER_NAMES = (
    semconv.GEN_AI_PROVIDER_NAME,
    semconv.GEN_AI_SYSTEM,
    "llm.provider",
    "llm.system",
)
# Provider values of the older conventions and of OpenInference, in semconv spelling.
PROVIDER_ALIASES = {
    "gemini": semconv.PROVIDER_GEMINI,
    "vertex_ai": semconv.PROVIDER_VERTEX_AI,
    "vertexai": semconv.PROVIDER_VERTEX_AI,
    "google": semconv.PROVIDER_GEMINI,
    "mistralai": "mistral_ai",
    "azure": "azure.ai.openai",
    "az.ai.openai": "azure.ai.openai",
    "aws": "aws.bedrock",
    "xai": "x_ai",
}
# OpenInference's span kinds that are one model call, and OpenLLMetry's old request types.
_OPERATIONS = {
    ("openinference.span.kind", "LLM"): semconv.OP_CHAT,
    ("openinference.span.kind", "EMBEDDING"): semconv.OP_EMBEDDINGS,
    ("llm.request.type", "chat"): semconv.OP_CHAT,
    ("llm.request.type", "completion"): semconv.OP_TEXT_COMPLETION,
    ("llm.request.type", "embedding"): semconv.OP_EMBEDDINGS,
}
_OPERATION_SOURCES = ("openinference.span.kind", "llm.request.type")


def _token(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def normalise(
    attrs: Mapping[str, Any], customer_attributes: Sequence[str] = (semconv.CMDRDATA_CUSTOMER_ID,)
) -> dict[str, Any] | None:
    """A foreign span's attributes under our names, or None when it is no model call.

    Our names win where both are present; the foreign names stay too (they are harmless, and
    ``cmdrdata.metadata.*`` passes through). The customer is the first non-empty string among
    ``customer_attributes`` (SPEC section 6); none found removes ``cmdrdata.customer_id``.
    """
    out = dict(attrs)
    if semconv.GEN_AI_OPERATION_NAME not in out:
        for source in _OPERATION_SOURCES:
            operation = _OPERATIONS.get((source, out.get(source)))  # type: ignore[arg-type]
            if operation is not None:
                out[semconv.GEN_AI_OPERATION_NAME] = operation
                break
        else:
            return None
    for ours, theirs in _RENAMES:
        if ours in out:
            continue
        for name in theirs:
            if name in out:
                out[ours] = out[name]
                break
    for name in _PROVIDER_NAMES:
        provider = out.get(name)
        if isinstance(provider, str) and provider:
            out[semconv.GEN_AI_PROVIDER_NAME] = PROVIDER_ALIASES.get(provider.lower(), provider)
            break
    _include_cache(out)
    _set_customer(out, customer_attributes)
    return out


def _include_cache(out: dict[str, Any]) -> None:
    """Input must include cached tokens; a count smaller than its own cache part cannot."""
    total = _token(out.get(semconv.GEN_AI_USAGE_INPUT_TOKENS))
    if total is None:
        return
    cached = (_token(out.get(semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)) or 0) + (
        _token(out.get(semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS)) or 0
    )
    if total < cached:
        out[semconv.GEN_AI_USAGE_INPUT_TOKENS] = total + cached


def _set_customer(out: dict[str, Any], names: Sequence[str]) -> None:
    for name in names:
        value = out.get(name)
        if isinstance(value, str) and value.strip():
            out[semconv.CMDRDATA_CUSTOMER_ID] = value.strip()
            return
    out.pop(semconv.CMDRDATA_CUSTOMER_ID, None)


class SpanRecord:
    """The parts of a finished span that billing reads; duck-types ``ReadableSpan``.

    Used for a foreign span seen through ``normalise`` and for spans decoded from OTLP, where
    building a full ``ReadableSpan`` would cost more than billing it.
    """

    __slots__ = (
        "attributes",
        "context",
        "end_time",
        "instrumentation_scope",
        "parent",
        "resource",
        "start_time",
        "status",
    )

    def __init__(
        self,
        attributes: Mapping[str, Any],
        context: Any,
        parent: Any,
        start_time: int | None,
        end_time: int | None,
        status: Status,
        resource: Any,
        instrumentation_scope: Any,
    ) -> None:
        self.attributes = attributes
        self.context = context
        self.parent = parent
        self.start_time = start_time
        self.end_time = end_time
        self.status = status
        self.resource = resource
        self.instrumentation_scope = instrumentation_scope


def is_ours(span: Any) -> bool:
    scope = span.instrumentation_scope
    return scope is not None and scope.name == semconv.SCOPE_NAME


def foreign_view(span: Any, customer_attributes: Sequence[str]) -> SpanRecord | None:
    """``span`` with normalised attributes, or None when it is no model call."""
    attrs = normalise(span.attributes or {}, customer_attributes)
    if attrs is None:
        return None
    return SpanRecord(
        attrs,
        span.context,
        span.parent,
        span.start_time,
        span.end_time,
        span.status,
        span.resource,
        span.instrumentation_scope,
    )
