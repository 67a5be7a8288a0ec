"""The direct intake's hand-over with ``export()``: whichever path sees a claimed call first bills
it, the other skips it, and a skip in ``export()`` waits until the call is durable (SPEC §7, §8).

The spool ignores an event id it already holds, so double billing would not show in the spool;
here the intake bills into a list, which shows every span it bills, each time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cmdrdata_exporter.intake import DirectIntake, span_key
from tests.span_maker import usage_spans


class _Billed:
    """What the intake billed, in order: the real intake bills through a callable like this."""

    def __init__(self) -> None:
        self.spans: list[Any] = []

    def __call__(self, spans: Sequence[Any]) -> int:
        self.spans.extend(spans)
        return len(spans)


def _keys(spans: Sequence[Any]) -> list[tuple[int, int]]:
    return [span_key(span) for span in spans]


def test_exported_before_handed_over_is_billed_by_export_and_skipped_after() -> None:
    """SimpleSpanProcessor: export() runs inside span.end(), before the hand-over."""
    billed = _Billed()
    intake = DirectIntake(billed)
    (span,) = usage_spans(1)
    intake.claim(span)
    assert _keys(intake.exported([span])) == _keys([span])  # export() bills it itself
    intake.submit(span)
    assert intake.pending() == 0
    intake.drain()
    assert billed.spans == []  # the hand-over added nothing: one event, from export()
    intake.stop()


def test_handed_over_before_export_is_skipped_by_export_once_durable() -> None:
    """BatchSpanProcessor: the span reaches export() after the hand-over."""
    billed = _Billed()
    intake = DirectIntake(billed)
    spans = usage_spans(3)
    for span in spans:
        intake.claim(span)
        intake.submit(span)
    other = usage_spans(1)  # a span nobody handed over: export() bills it
    assert _keys(intake.exported([*spans, *other])) == _keys(other)
    # Durable when export() returns: drained synchronously, not left for the thread.
    assert intake.pending() == 0
    assert _keys(billed.spans) == _keys(spans)
    intake.stop()
    assert len(billed.spans) == 3


def test_unclaimed_spans_pass_both_ways() -> None:
    """An unsampled call is only handed over; spans of other origins only exported."""
    billed = _Billed()
    intake = DirectIntake(billed)
    handed, exported = usage_spans(1), usage_spans(2)
    intake.submit(handed[0])
    assert _keys(intake.exported(exported)) == _keys(exported)
    # The hand-over finished before export() returned, so it is durable by then too.
    assert _keys(billed.spans) == _keys(handed)
    intake.stop()
    assert len(billed.spans) == 1


def test_a_span_exported_twice_after_export_billed_it_is_billed_once() -> None:
    billed = _Billed()
    intake = DirectIntake(billed)
    (span,) = usage_spans(1)
    intake.claim(span)
    assert len(intake.exported([span])) == 1
    assert intake.exported([span]) == []
    intake.submit(span)
    intake.stop()
    assert billed.spans == []
