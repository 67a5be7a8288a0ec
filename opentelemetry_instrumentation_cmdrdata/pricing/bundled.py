"""List prices from the ``genai-prices`` package's bundled data, never from the network.

Importing genai-prices and its data takes most of a second of CPU, so it happens once, on a
background thread started by ``start()``; a call on the app's thread never waits for it.
We build our own snapshot from the bundled data instead of calling ``calc_price``: an app that
starts genai-prices' ``UpdatePrices`` elsewhere then cannot change what we report as
``genai-prices <version>``, and each (provider, model) is resolved once into integer rates
(``calc_price`` costs about 150 µs per call here).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from .rates import Rates, build_rates

_log = logging.getLogger("opentelemetry_instrumentation_cmdrdata")

# gen_ai.provider.name -> genai-prices provider id, where the two differ or where
# genai-prices' own fuzzy matching would pick another provider (azure.ai.openai -> openai).
PROVIDER_IDS = {
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
    "together_ai": "together",
}
_MAX_CACHED = 4096  # models seen; foreign spans may carry any string


class BundledPrices:
    """genai-prices' bundled data, loaded once in the background."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._patient = True  # the exporter waits for the data once, not on every event
        self._snapshot: Any = None
        self._provider_ids: frozenset[str] = frozenset()
        self._models: dict[tuple[str, str], tuple[Any, Rates | None]] = {}
        self._rates: dict[int, tuple[Any, Rates | None]] = {}
        self.source = ""

    def start(self) -> None:
        """Begin loading on a daemon thread; later calls do nothing."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._load, name="cmdrdata-prices", daemon=True
                )
                self._thread.start()

    def wait(self, timeout: float) -> bool:
        """Wait for the data (off the app's thread only); True once it is usable.

        After one wait that timed out, later calls do not wait: a loader that hangs must not
        hold up every event.
        """
        self.start()
        if not self._ready.wait(timeout if self._patient else 0):
            self._patient = False
        return self._snapshot is not None

    def after_fork_in_child(self) -> None:
        """A fork while loading leaves the child with no loader thread and modules half
        imported by it: forget both, so that start() loads them again."""
        if self._thread is None or self._ready.is_set():
            return
        try:
            for name in _half_imported_by_other_threads():
                sys.modules.pop(name, None)
        except Exception as exc:  # never an error in the app's fork
            _log.debug("cmdrdata: after fork: %r", exc)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def _load(self) -> None:
        try:
            import genai_prices
            from genai_prices.data import providers
            from genai_prices.data_snapshot import DataSnapshot

            self._snapshot = DataSnapshot(providers=list(providers), from_auto_update=False)
            self._provider_ids = frozenset(p.id for p in providers)
            self.source = f"genai-prices {genai_prices.__version__}"
        except ImportError:
            _log.info("cmdrdata: genai-prices is not installed; no list prices for cost")
        except Exception as exc:
            _log.error(
                "cmdrdata: genai-prices' bundled prices could not be loaded (%s: %s); "
                "costs come only from providers and CMDRDATA_PRICES_FILE",
                type(exc).__name__,
                exc,
            )
        finally:
            self._ready.set()

    def rates(self, provider: str, model: str, when_ns: int | None) -> Rates | None:
        """The rates of a model now (or at ``when_ns``), or None when it is not known."""
        entry = self._models.get((provider, model))
        if entry is None:
            entry = self._resolve(provider, model)
        info, fixed = entry
        if fixed is not None or info is None:
            return fixed
        # Prices that change on a date or by time of day: pick the ones in force.
        when = datetime.fromtimestamp(when_ns / 1e9, timezone.utc) if when_ns else None
        return self._converted(info.get_prices(when or datetime.now(timezone.utc)))

    def _resolve(self, provider: str, model: str) -> tuple[Any, Rates | None]:
        """(model info, its rates when they never change) once per (provider, model)."""
        info = self._find(provider, model) if self._snapshot is not None else None
        fixed = None
        if info is not None and not isinstance(info.prices, list):
            fixed = self._converted(info.prices)
            if fixed is None:
                info = None  # no token prices: nothing to look up per call
        if len(self._models) >= _MAX_CACHED:
            self._models.clear()
        entry = self._models[(provider, model)] = (info, fixed)
        return entry

    def _converted(self, prices: Any) -> Rates | None:
        entry = self._rates.get(id(prices))
        if entry is None or entry[0] is not prices:
            try:
                rates = _to_rates(prices)
            except ValueError:  # a price genai-prices itself would reject
                rates = None
            entry = self._rates[id(prices)] = (prices, rates)
        return entry[1]

    def _find(self, provider: str, model: str) -> Any:
        provider_id = PROVIDER_IDS.get(provider, provider)
        if provider_id not in self._provider_ids:
            return None
        try:
            return self._snapshot.find_provider_model(model, None, provider_id, None)[1]
        except LookupError:
            return None


def _half_imported_by_other_threads() -> list[str]:
    """Modules still executing their import in a thread that the fork did not copy."""
    import importlib._bootstrap as bootstrap  # where import keeps its per-module locks

    me = threading.get_ident()
    locks = getattr(bootstrap, "_module_locks", {})
    names = []
    for name, module in list(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        if spec is None or not getattr(spec, "_initializing", False):
            continue
        ref = locks.get(name)
        lock = ref() if callable(ref) else None
        if lock is not None and getattr(lock, "owner", None) == me:
            continue  # the forking thread's own import goes on in the child
        names.append(name)
    return names


def register_fork_handler(bundled: BundledPrices) -> None:
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=bundled.after_fork_in_child)


def _to_rates(prices: Any) -> Rates | None:
    """Our rates from a genai-prices ``ModelPrice``; None when it has no token prices."""
    fields = {
        "input": _price(getattr(prices, "input_mtok", None)),
        "output": _price(getattr(prices, "output_mtok", None)),
        "cache_read": _price(getattr(prices, "cache_read_mtok", None)),
        "cache_write": _price(getattr(prices, "cache_write_mtok", None)),
        "reasoning": _price(getattr(prices, "output_reasoning_mtok", None)),
    }
    if fields["input"] is None and fields["output"] is None:
        return None  # priced by something we do not count (audio hours, pages)
    zero = _price(0)
    fields["input"] = fields["input"] or zero
    fields["output"] = fields["output"] or zero
    requests = getattr(prices, "requests_kcount", None)
    return build_rates(fields, per_call=requests)


def _price(value: Any) -> Any:
    """A genai-prices price (a ``Decimal`` or ``TieredPrices``) as ``build_rates`` takes it."""
    if value is None:
        return None
    tiers = getattr(value, "tiers", None)
    if tiers is None:
        return Decimal(value)
    return (value.base, [(tier.start, tier.price) for tier in tiers])
