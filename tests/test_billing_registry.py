"""The billing sink registry: one entry per sink, weakly held, read in O(1) per call."""

from __future__ import annotations

import gc

from opentelemetry_instrumentation_cmdrdata import billing


class _Sink:
    def __init__(self) -> None:
        self.claimed: list[object] = []
        self.taken: list[object] = []

    def claim_direct(self, span: object) -> None:
        self.claimed.append(span)

    def submit_direct(self, span: object) -> None:
        self.taken.append(span)


def test_register_twice_is_one_entry_and_unregister_removes_it() -> None:
    before = billing.sinks()
    sink = _Sink()
    billing.register_sink(sink)
    billing.register_sink(sink)
    assert billing.sinks() == (*before, sink)
    billing.bill_directly(billing.sinks(), "span")
    assert sink.taken == ["span"]
    billing.unregister_sink(sink)
    billing.unregister_sink(sink)  # twice: nothing to do
    assert billing.sinks() == before


def test_a_sink_nobody_holds_is_dropped_not_kept_alive() -> None:
    before = billing.sinks()
    billing.register_sink(_Sink())
    gc.collect()
    assert billing.sinks() == before
    assert len(billing._refs) == len(before)


def test_a_failing_sink_does_not_stop_the_others(caplog) -> None:
    class Broken(_Sink):
        def submit_direct(self, span: object) -> None:
            raise RuntimeError("boom")

    broken, good = Broken(), _Sink()
    billing.register_sink(broken)
    billing.register_sink(good)
    try:
        billing.bill_directly(billing.sinks(), "span")
        billing.bill_directly(billing.sinks(), "span 2")
    finally:
        billing.unregister_sink(broken)
        billing.unregister_sink(good)
    assert good.taken == ["span", "span 2"]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "failed to take a span" in warnings[0].getMessage()
