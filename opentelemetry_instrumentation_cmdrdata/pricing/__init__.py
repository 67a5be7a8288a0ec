"""The price of a call in USD (SPEC section 12), for our spans and the exporter's events.

A leaf of the package (it imports only ``semconv``), so the exporter can use it without a loop.
Sources, first that knows the call wins: what the provider reported it charged (OpenRouter's
``usage.cost``); ``CMDRDATA_PRICES_FILE``; LiteLLM's computed cost; genai-prices' bundled data.
Each model's rates are resolved once; what a call pays is a few integer multiplications.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from .. import semconv as sc
from .bundled import BundledPrices, register_fork_handler
from .prices_file import PricesFileError, load_prices_file
from .rates import EXACT, Rates

__all__ = [
    "LITELLM",
    "PROVIDER",
    "Cost",
    "Pricer",
    "Reported",
    "add_span_cost",
    "bundled_prices",
    "event_cost",
    "pricer_for",
    "reported_cost",
]

PROVIDER = "provider"
LITELLM = "litellm"
#: How long the exporter (never the app's call) waits for the bundled prices to load.
EVENT_WAIT_S = 10.0

_log = logging.getLogger("opentelemetry_instrumentation_cmdrdata")
_BUNDLED = BundledPrices()
register_fork_handler(_BUNDLED)


class Cost(NamedTuple):
    """An exact amount, ``units`` of ``10**-scale`` USD: integers, so no float ever touches it."""

    units: int
    scale: int
    source: str

    @property
    def amount(self) -> Decimal:
        return Decimal(self.units).scaleb(-self.scale, EXACT)

    @property
    def usd(self) -> float:
        """The nearest float (for the span attribute): a correctly rounded integer division."""
        return self.units / 10**self.scale

    def text(self) -> str:
        """Plain decimal notation, no exponent, no trailing zeros: ``"0.000195"``."""
        return format(self.amount.normalize(EXACT), "f")


@dataclass(frozen=True, slots=True)
class Reported:
    """A cost computed by someone else: ``provider`` (what it charged) or ``litellm``."""

    source: str
    usd: float | int

    def cost(self) -> Cost:
        # repr() is the shortest text that reads back as this float: the number the provider
        # wrote in its JSON, where Decimal(float) would add the binary float's tail.
        written = Decimal(repr(self.usd))
        scale = max(0, -int(written.as_tuple().exponent))
        return Cost(int(written.scaleb(scale, EXACT)), scale, self.source)


def reported_cost(source: str, value: Any) -> Reported | None:
    """A reported cost if ``value`` is a sane USD amount, else None."""
    if type(value) in (int, float) and math.isfinite(value) and 0 <= value < 1e9:
        return Reported(source, value)
    return None


class Pricer:
    """Prices calls from one configuration (a prices file or none); share it, it is thread-safe."""

    def __init__(self, prices_file: str | None, bundled: BundledPrices) -> None:
        self._bundled = bundled
        self._file: dict[tuple[str, str], Rates] = {}
        self._file_source = ""
        if prices_file:
            try:
                self._file = load_prices_file(prices_file)
                self._file_source = f"prices:{Path(prices_file).name}"
            except PricesFileError as exc:
                _log.error(
                    "cmdrdata: CMDRDATA_PRICES_FILE %s %s; using the bundled prices instead",
                    prices_file,
                    exc,
                )
        # The bundled data (most of a second of CPU) loads when the first call asks for a
        # price, not at instrument(): a process that never calls an LLM never pays for it.

    def cost(
        self,
        provider: str | None,
        response_model: str | None,
        request_model: str | None,
        tokens: tuple[int, int, int, int, int],
        reported: Reported | None = None,
        when_ns: int | None = None,
        wait: bool = False,
    ) -> Cost | None:
        """The call's cost, or None. ``tokens``: input, output, cache read, cache write,
        reasoning, with SPEC section 4's meaning (input includes cached, output reasoning).

        ``wait`` lets the exporter wait for the bundled prices; the app's thread never does.
        """
        if reported is not None and reported.source == PROVIDER:
            return reported.cost()
        if not provider or not (tokens[0] or tokens[1]):
            return None
        if request_model == response_model:
            request_model = None
        if self._file:
            for model in (response_model, request_model):
                rates = self._file.get((provider, model)) if model else None
                if rates is not None:
                    return _priced(rates, tokens, self._file_source)
        if reported is not None:  # LiteLLM's: after your negotiated rates, before list prices
            return reported.cost()
        bundled = self._bundled
        if not bundled.ready:
            if not wait:
                bundled.start()  # in a forked child the loader must start again
                return None
            if not bundled.wait(EVENT_WAIT_S):
                return None
        for model in (response_model, request_model):
            rates = bundled.rates(provider, model, when_ns) if model else None
            if rates is not None:
                return _priced(rates, tokens, bundled.source)
        return None


def _priced(rates: Rates, tokens: tuple[int, int, int, int, int], source: str) -> Cost | None:
    units = rates.units(*tokens)
    if units is None:
        return None
    return Cost(units, rates.scale, source)


_pricers: dict[str, Pricer] = {}
_pricers_lock = threading.Lock()


def pricer_for(enabled: bool, prices_file: str | None) -> Pricer | None:
    """The process's pricer for this configuration; None when cost is off.

    One per prices file, so the file is read (and a broken one logged) once, at start.
    """
    if not enabled:
        return None
    key = prices_file or ""
    pricer = _pricers.get(key)
    if pricer is None:
        with _pricers_lock:
            pricer = _pricers.get(key)
            if pricer is None:
                pricer = _pricers[key] = Pricer(prices_file, _BUNDLED)
    return pricer


def bundled_prices() -> BundledPrices:
    """The process's one copy of genai-prices' data (tests wait on it)."""
    return _BUNDLED


_reported_errors: set[str] = set()


def _log_once(where: str, exc: Exception) -> None:
    level = logging.DEBUG if where in _reported_errors else logging.WARNING
    _reported_errors.add(where)
    _log.log(
        level, "cmdrdata: could not price a call in %s: %s: %s", where, type(exc).__name__, exc
    )


def add_span_cost(
    pricer: Pricer,
    attributes: dict[str, Any],
    provider: str | None,
    request_model: str | None,
    reported: Reported | None,
) -> None:
    """Add ``cmdrdata.cost.usd`` and ``cmdrdata.cost.source`` to a call's end attributes.

    On the app's thread: never waits, never raises.
    """
    try:
        get = attributes.get
        cost = pricer.cost(
            provider,
            get(sc.GEN_AI_RESPONSE_MODEL),
            request_model,
            # Our own counts: whole numbers >= 0 or absent (providers/_common.token_count).
            (
                get(sc.GEN_AI_USAGE_INPUT_TOKENS) or 0,
                get(sc.GEN_AI_USAGE_OUTPUT_TOKENS) or 0,
                get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) or 0,
                get(sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS) or 0,
                get(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS) or 0,
            ),
            reported,
        )
        if cost is not None:
            attributes[sc.CMDRDATA_COST_USD] = cost.usd
            attributes[sc.CMDRDATA_COST_SOURCE] = cost.source
    except Exception as exc:
        _log_once("the instrumentation", exc)


def event_cost(
    pricer: Pricer | None,
    attrs: Any,
    provider: str | None,
    response_model: str | None,
    request_model: str | None,
    tokens: tuple[int, int, int, int, int],
    when_ns: int | None,
) -> Cost | None:
    """An event's cost from a finished span's attributes (ours or another instrumentation's).

    A cost the provider reported travels on the span as a float; it is read back through its
    shortest repr, so the event carries the provider's number, not the float's binary tail.
    """
    if pricer is None:
        return None
    try:
        source = attrs.get(sc.CMDRDATA_COST_SOURCE)
        reported = (
            reported_cost(source, attrs.get(sc.CMDRDATA_COST_USD))
            if source in (PROVIDER, LITELLM)
            else None
        )
        return pricer.cost(
            provider, response_model, request_model, tokens, reported, when_ns, wait=True
        )
    except Exception as exc:
        _log_once("the exporter", exc)
        return None
