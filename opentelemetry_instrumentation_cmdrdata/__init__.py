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
from collections.abc import Callable, Collection
from functools import partial
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from . import customer
from .customer import customer_context, reset_customer_id, set_customer_id
from .package import _instruments
from .patching import module_exists, unwrap_target, when_imported, wrap_target
from .providers import available
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
        self._telemetry = telemetry
        telemetry.attach_span_processor()  # force_flush() makes direct billing durable
        self._wrapped = []
        for name, sdk_module, factory in available(
            list(providers) if providers is not None else None
        ):
            # Each SDK is wrapped when the app imports it (at once if it already has),
            # and each method when its module is imported: instrument() imports nothing.
            when_imported(sdk_module, partial(self._wrap_provider, name, factory, telemetry))

    def _wrap_provider(
        self, name: str, factory: Callable[[Telemetry], Any], telemetry: Telemetry, _module: Any
    ) -> None:
        if not telemetry.active:
            return  # uninstrumented before the SDK was imported
        try:
            hooks = factory(telemetry)
            targets = hooks.targets()
        except Exception as exc:
            _log.debug("cmdrdata: %s not instrumented: %s", name, exc)
            return
        for target in targets:
            if module_exists(target.module):
                when_imported(target.module, partial(self._wrap_one, hooks, target, telemetry))
            else:
                _log.debug("%s not found; %s not instrumented", target.module, target.qualname)

    def _wrap_one(self, hooks: Any, target: Any, telemetry: Telemetry, _module: Any) -> None:
        if telemetry.active and wrap_target(hooks, target, telemetry):
            self._wrapped.append(target)

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._telemetry is not None:
            # Bound methods the SDK cached (with_raw_response) may still hold
            # our wrapper: switching it off makes them pass straight through.
            self._telemetry.active = False
            self._telemetry.detach_span_processor()
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
