"""PLACEHOLDER (the customer-attribution module is being written; this minimal version keeps the package importable)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from opentelemetry import baggage
from opentelemetry import context as otel_context

from .semconv import CMDRDATA_CUSTOMER_ID, CMDRDATA_METADATA_PREFIX


def _ctx(customer_id: str, metadata: dict[str, Any]) -> Any:
    ctx = baggage.set_baggage(CMDRDATA_CUSTOMER_ID, customer_id)
    for key, value in metadata.items():
        ctx = baggage.set_baggage(CMDRDATA_METADATA_PREFIX + key, str(value), ctx)
    return ctx


@contextmanager
def customer_context(customer_id: str, **metadata: Any):
    token = otel_context.attach(_ctx(customer_id, metadata))
    try:
        yield
    finally:
        otel_context.detach(token)


def set_customer_id(customer_id: str, **metadata: Any) -> object:
    return otel_context.attach(_ctx(customer_id, metadata))


def reset_customer_id(token: object) -> None:
    otel_context.detach(token)


def read_attribution(context: Any = None) -> tuple[str | None, dict[str, str]]:
    entries = baggage.get_all(context)
    if not entries:
        return None, {}
    customer = entries.get(CMDRDATA_CUSTOMER_ID)
    metadata = {
        k[len(CMDRDATA_METADATA_PREFIX) :]: str(v)
        for k, v in entries.items()
        if k.startswith(CMDRDATA_METADATA_PREFIX)
    }
    return (str(customer) if customer is not None else None), metadata


def coerce_call_customer_id(value: Any) -> str | None:
    if isinstance(value, str) and value.strip() and len(value.strip()) <= 256:
        return value.strip()
    return None


def coerce_call_metadata(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {}


def context_without_attribution(context: Any = None) -> Any:
    ctx = context if context is not None else otel_context.get_current()
    entries = baggage.get_all(ctx)
    for key in entries:
        if key.startswith("cmdrdata."):
            ctx = baggage.remove_baggage(key, ctx)
    return ctx
