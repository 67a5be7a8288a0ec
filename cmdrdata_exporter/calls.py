"""One event per call when several instrumentations wrap it (``genai`` mode, SPEC section 11).

The same call wrapped by two instrumentations in one process gives two GenAI spans, parent and
child; a response id does not always tell (OpenInference records none). So relations decide:

- a foreign span directly around or inside one of ours is never billed: ours is;
- of two foreign GenAI spans, parent and child, the inner one is billed (SPEC section 10);
- spans with the same provider and response id are one call: ours wins, else the first.

Spans reach the exporter in any order (a ``SimpleSpanProcessor`` exports the inner span first,
the direct hand-over bills ours at once, a remote service's batches arrive when they do), so a
foreign span's event is spooled *held*: durable at once, but not sent before ``hold`` seconds.
If a span arriving within that time shows it was a second span of a call, the held event is
discarded from the spool. Past the hold the first event stands and a late second span is not
billed. The memory is bounded; it lives in the process, so a restart forgets what it held
(those events are then delivered after their hold).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cmdrdata_exporter.events import event_id_for
from cmdrdata_exporter.foreign import is_ours

DEFAULT_HOLD = 30.0  # seconds; longer than an OpenTelemetry batch delay plus a collector's
DEFAULT_CAPACITY = 200_000  # spans remembered, about 200 bytes each

# What the ledger keeps per span, as one float: ours, not billed, or (a foreign event) the
# time until which it can still be withdrawn. One float and one int key per span keep the
# memory of a busy receiver small.
_OURS = -1.0
_NOT_BILLED = -2.0
_SPAN_BITS = 64
_SPAN_MASK = (1 << _SPAN_BITS) - 1


class _Recent:
    """A bounded map that forgets its oldest half at once: two plain dicts (much smaller than
    an ``OrderedDict``), O(1) for every operation."""

    __slots__ = ("_half", "_new", "_old")

    def __init__(self, capacity: int) -> None:
        self._half = max(1, capacity // 2)
        self._new: dict[int, Any] = {}
        self._old: dict[int, Any] = {}

    def get(self, key: int | None) -> Any:
        value = self._new.get(key)  # type: ignore[arg-type]
        return self._old.get(key) if value is None else value  # type: ignore[arg-type]

    def __contains__(self, key: object) -> bool:
        return key in self._new or key in self._old

    def __getitem__(self, key: int) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: int, value: Any) -> None:
        new = self._new
        new[key] = value
        if len(new) > self._half:
            self._old, self._new = new, {}


@dataclass
class Decision:
    """What to do with one batch: events to spool now, to spool held, to withdraw."""

    now: list[dict[str, Any]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)
    discard: list[str] = field(default_factory=list)
    skipped: int = 0


class CallLedger:
    """Remembers recent GenAI spans by trace and span id, parent and response id."""

    def __init__(self, hold: float = DEFAULT_HOLD, capacity: int = DEFAULT_CAPACITY) -> None:
        self.hold = hold
        self._spans = _Recent(capacity)  # span -> state
        self._children_of = _Recent(capacity)  # parent span -> child span(s)
        self._responses = _Recent(capacity)  # hash(provider, response id) -> span

    def decide(
        self, pairs: Sequence[tuple[Any, dict[str, Any] | None]], now: float | None = None
    ) -> Decision:
        """Sort (span, event) pairs of one batch into billed now, held, withdrawn, skipped.

        Ours go first, so within a batch ours win without waiting for a hold.
        """
        now = time.time() if now is None else now
        out = Decision()
        pending: dict[str, dict[str, Any]] = {}
        order = sorted(range(len(pairs)), key=lambda i: not is_ours(pairs[i][0]))
        for index in order:
            span, event = pairs[index]
            if event is not None:
                self._one(span, event, now, out, pending)
        out.held = list(pending.values())
        return out

    def _withdraw(self, key: int, now: float, out: Decision, pending: dict) -> bool:
        """Take back the held foreign event of span ``key``; False when it is already out."""
        state = self._spans[key]
        if state == _NOT_BILLED:
            return True
        if state <= now:  # released (or ours, which is never withdrawn)
            return False
        event_id = event_id_for(key >> _SPAN_BITS, key & _SPAN_MASK)
        if pending.pop(event_id, None) is None:
            out.discard.append(event_id)
        self._spans[key] = _NOT_BILLED
        return True

    def _one(
        self, span: Any, event: dict[str, Any], now: float, out: Decision, pending: dict
    ) -> None:
        ctx, parent = span.context, span.parent
        trace = ctx.trace_id << _SPAN_BITS
        key = trace | ctx.span_id
        spans = self._spans
        again = spans.get(key)
        if again is not None:  # the same span again (a retried request): the same decision
            if again == _NOT_BILLED:
                out.skipped += 1
            elif again == _OURS or again <= now:
                out.now.append(event)  # the spool ignores an event id it holds already
            else:
                pending[event["metadata"]["event_id"]] = event
            return
        up = trace | parent.span_id if parent is not None else None
        if up not in spans:
            up = None
        down = [k for k in _as_tuple(self._children_of.get(key)) if k in spans]
        meta = event["metadata"]
        response = (
            hash((meta["provider_name"], meta["response_id"])) if meta["response_id"] else None
        )
        twin = self._responses.get(response) if response is not None else None
        if twin not in spans:
            twin = None
        if is_ours(span):
            # Ours wins over a foreign span of the same call, unless that one is already out.
            billed = True
            for other in (up, *down, twin):
                if (
                    other is not None
                    and spans[other] != _OURS
                    and not self._withdraw(other, now, out, pending)
                ):
                    billed = False
            state = _OURS if billed else _NOT_BILLED
        elif (up is not None and spans[up] == _OURS) or down or twin is not None:
            state = _NOT_BILLED  # around or inside ours, around an inner GenAI span, a twin
        elif up is not None and not self._withdraw(up, now, out, pending):
            state = _NOT_BILLED  # the outer foreign span's event is out already
        else:
            state = now + self.hold
        if state == _NOT_BILLED:
            out.skipped += 1
        elif state == _OURS:
            out.now.append(event)
        else:
            pending[meta["event_id"]] = event
        self._remember(key, trace | parent.span_id if parent is not None else None, state, response)

    def _remember(self, key: int, up: int | None, state: float, response: int | None) -> None:
        self._spans[key] = state
        if up is not None:
            siblings = self._children_of.get(up)
            self._children_of[up] = key if siblings is None else (*_as_tuple(siblings), key)
        if response is not None and response not in self._responses:
            self._responses[response] = key


def _as_tuple(value: int | tuple[int, ...] | None) -> tuple[int, ...]:
    if value is None:
        return ()
    return value if isinstance(value, tuple) else (value,)


def bill(
    ledger: CallLedger, pairs: Sequence[tuple[Any, dict[str, Any] | None]], spool: Any, encode: Any
) -> int:
    """Apply one batch's decision to ``spool``: withdrawals first, then new events.

    Returns how many events were newly queued (held ones included).
    """
    decision = ledger.decide(pairs)
    if decision.discard:
        spool.discard(decision.discard)
    added = 0
    if decision.now:
        added += spool.put([(e["metadata"]["event_id"], encode(e)) for e in decision.now])
    if decision.held:
        rows = [(e["metadata"]["event_id"], encode(e)) for e in decision.held]
        added += spool.put(rows, ledger.hold)
    return added
