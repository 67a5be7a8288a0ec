"""The exporter's own metrics (SPEC section 13): trouble visible before the invoice.

Instruments come from the MeterProvider given to the exporter, else the global one. Under
``opentelemetry-instrument`` the exporter is built before the distro sets the global provider,
so the global one may still be the API's proxy: its instruments start recording once a real
provider is set. With the API's no-op provider nothing is created and nothing is recorded.

Attributes are fixed, low-cardinality names: never a customer id, the key or the endpoint.
Recording never raises into delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from opentelemetry.metrics import (
    CallbackOptions,
    MeterProvider,
    NoOpMeterProvider,
    Observation,
    get_meter_provider,
)

from cmdrdata_exporter.events import event_end
from cmdrdata_exporter.sender import __version__

try:  # what get_meter_provider() returns until one is set (private to the API)
    from opentelemetry.metrics._internal import _ProxyMeterProvider as _Placeholder
except ImportError:  # pragma: no cover
    _Placeholder = None  # type: ignore[assignment,misc]

logger = logging.getLogger("cmdrdata_exporter.metrics")

SCOPE = "cmdrdata_exporter"
# Drops counter kinds (diagnostics.Drops) that lose an event, and the reason each is published
# under; the other kinds (a clipped string, a replaced value) lose nothing.
DROP_REASONS = {
    "spool_full": "spool_cap",
    "memory_queue_full": "memory_queue_full",
    "export_after_shutdown": "export_after_shutdown",
    "conversion_error": "conversion_error",
    "internal_error": "internal_error",
}
# From the call's end to cmdrdata's 2xx: seconds when all is well, hours after an outage.
_DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400]


class ExporterMetrics:
    """The instruments, and the two callbacks that read the exporter's state when collected.

    ``queue_state`` returns (events queued, when the oldest was queued) or None once the
    exporter is shut down; ``paused`` returns ``auth``/``endpoint`` while delivery waits for
    the settings to work.
    """

    def __init__(
        self,
        provider: MeterProvider,
        queue_state: Callable[[], tuple[int, float | None] | None],
        paused: Callable[[], str | None],
        placeholder: bool = False,
    ) -> None:
        meter = provider.get_meter(SCOPE, __version__)
        # The global provider as it was at start: while it is still the API's placeholder,
        # recording would only reach no-op instruments, so it is skipped (no cost).
        self._placeholder = provider if placeholder else None
        self._queue_state = queue_state
        self._paused = paused
        self._delivered = meter.create_counter(
            "cmdrdata.exporter.events.delivered", "{event}", "Events cmdrdata accepted (2xx)"
        )
        self._rejected = meter.create_counter(
            "cmdrdata.exporter.events.rejected",
            "{event}",
            "Events cmdrdata refused with a 4xx; kept as rejected (cmdrdata-exporter requeue)",
        )
        self._dropped = meter.create_counter(
            "cmdrdata.exporter.events.dropped", "{event}", "Events lost before delivery"
        )
        self._duration = meter.create_histogram(
            "cmdrdata.exporter.delivery.duration",
            "s",
            "From the call's end to cmdrdata's 2xx",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        meter.create_observable_gauge(
            "cmdrdata.exporter.events.queued",
            [self._observe_queued],
            "{event}",
            "Events in the spool awaiting delivery",
        )
        meter.create_observable_gauge(
            "cmdrdata.exporter.paused",
            [self._observe_paused],
            "1",
            "1 while cmdrdata refuses the API key or the endpoint (events wait), else 0",
        )

    # -- recorded by delivery ------------------------------------------------------------

    def recording(self) -> bool:
        """False while there is no real MeterProvider to record to: then skip the work."""
        if self._placeholder is None:
            return True
        current = get_meter_provider()
        return current is not self._placeholder and not isinstance(current, NoOpMeterProvider)

    def delivered(self, bodies: Sequence[str], now: float) -> None:
        """Events that just got a 2xx; their bodies give the calls' end times.

        Like ``rejected``, called only when ``recording()``."""
        try:
            self._delivered.add(len(bodies))
            for body in bodies:
                end = event_end(body)
                if end is not None:
                    self._duration.record(max(0.0, now - end))
        except Exception:  # a broken metrics pipeline must not stop billing
            logger.debug("recording delivery metrics failed", exc_info=True)

    def rejected(self, statuses: Iterable[int]) -> None:
        try:
            for status in statuses:
                self._rejected.add(1, {"http.response.status_code": status})
        except Exception:
            logger.debug("recording rejection metrics failed", exc_info=True)

    def dropped(self, kind: str, n: int) -> None:
        """A ``Drops`` count; published when that kind loses events."""
        reason = DROP_REASONS.get(kind)
        if reason is None or not self.recording():
            return
        try:
            self._dropped.add(n, {"reason": reason})
        except Exception:
            logger.debug("recording drop metrics failed", exc_info=True)

    # -- read when collected -------------------------------------------------------------

    def _observe_queued(self, _options: CallbackOptions) -> Iterable[Observation]:
        state = self._safely(self._queue_state)
        return [] if state is None else [Observation(state[0])]

    def _observe_paused(self, _options: CallbackOptions) -> Iterable[Observation]:
        reason = self._safely(self._paused)
        return [Observation(1, {"reason": reason})] if reason else [Observation(0)]

    @staticmethod
    def _safely(read: Callable[[], Any]) -> Any:
        try:
            return read()
        except Exception:
            logger.debug("reading the exporter's state for metrics failed", exc_info=True)
            return None


def exporter_metrics(
    provider: MeterProvider | None,
    queue_state: Callable[[], tuple[int, float | None] | None],
    paused: Callable[[], str | None],
) -> ExporterMetrics | None:
    """The exporter's metrics, or None when there is nowhere to send them."""
    provider = provider if provider is not None else get_meter_provider()
    placeholder = _Placeholder is not None and isinstance(provider, _Placeholder)
    if isinstance(provider, NoOpMeterProvider):
        return None
    try:
        return ExporterMetrics(provider, queue_state, paused, placeholder)
    except Exception as exc:
        logger.warning("cmdrdata exporter metrics are off (%s)", type(exc).__name__)
        return None
