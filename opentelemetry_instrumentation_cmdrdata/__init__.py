"""OpenTelemetry instrumentation that bills every LLM call to your customer.

Usage::

    from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor, customer_context

    CmdrDataInstrumentor().instrument(tracer_provider=provider)
    with customer_context("cust-42", plan="pro"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])

Each OpenAI, Anthropic and Google Gen AI call (sync or async, streamed or not)
becomes one CLIENT span with the GenAI semantic-convention attributes and the
customer id from baggage; ``cmdrdata_exporter.CmdrDataSpanExporter`` turns
those spans into usage events.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from . import customer
from .customer import customer_context, reset_customer_id, set_customer_id
from .package import _instruments
from .patching import unwrap_target, wrap_target
from .providers import load_hooks
from .telemetry import Telemetry, build_telemetry
from .version import __version__

_log = logging.getLogger("opentelemetry_instrumentation_cmdrdata")


class CmdrDataInstrumentor(BaseInstrumentor):
    """Instruments the installed OpenAI, Anthropic and Google Gen AI SDKs."""

    _telemetry: Telemetry | None = None
    _wrapped: list[Any] = []

    def instrumentation_dependencies(self) -> Collection[str]:
        # The SDKs are alternatives (the ``instruments-any`` extra); each one
        # is checked on its own when it is instrumented.
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        providers = kwargs.get("providers")
        if isinstance(providers, str):
            providers = [providers]
        telemetry = build_telemetry(kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        customer._reload_settings()  # pick up CMDRDATA_BAGGAGE_SECRET as set now
        wrapped = []
        for hooks in load_hooks(list(providers) if providers is not None else None, telemetry):
            for target in hooks.targets():
                if wrap_target(hooks, target, telemetry):
                    wrapped.append(target)
        self._telemetry = telemetry
        self._wrapped = wrapped
        _log.debug("cmdrdata instrumented %d SDK methods", len(wrapped))

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._telemetry is not None:
            # Bound methods the SDK cached (with_raw_response) may still hold
            # our wrapper: switching it off makes them pass straight through.
            self._telemetry.active = False
        for target in self._wrapped:
            unwrap_target(target)
        self._wrapped = []
        self._telemetry = None


__all__ = [
    "CmdrDataInstrumentor",
    "__version__",
    "customer_context",
    "reset_customer_id",
    "set_customer_id",
]
