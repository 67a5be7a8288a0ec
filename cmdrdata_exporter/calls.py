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
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cmdrdata_exporter.foreign import is_ours

DEFAULT_HOLD = 30.0  # seconds; longer than an OpenTelemetry batch delay plus a collector's
DEFAULT_CAPACITY = 200_000

_Key = tuple[int, int]  # (trace id, span id)


@dataclass(slots=True)
class _Seen:
    ours: bool
    event_id: str | None  # None: this span was not billed
    held_until: float  # the foreign event can still be withdrawn before this time


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
        self._capacity = capacity
        self._spans: OrderedDict[_Key, _Seen] = OrderedDict()
        self._children_of: OrderedDict[_Key, list[_Key]] = OrderedDict()
        self._responses: OrderedDict[tuple[str, str], _Key] = OrderedDict()

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

    def _withdraw(self, seen: _Seen, now: float, out: Decision, pending: dict) -> bool:
        """Take back a held foreign event; False when it is already out."""
        if seen.event_id is None:
            return True
        if seen.held_until <= now:
            return False
        if pending.pop(seen.event_id, None) is None:
            out.discard.append(seen.event_id)
        seen.event_id = None
        return True

    def _one(
        self, span: Any, event: dict[str, Any], now: float, out: Decision, pending: dict
    ) -> None:
        ctx, parent = span.context, span.parent
        trace_id = ctx.trace_id
        key = (trace_id, ctx.span_id)
        again = self._spans.get(key)
        if again is not None:  # the same span again (a retried request): the same decision
            if again.event_id is None:
                out.skipped += 1
            elif again.ours or again.held_until <= now:
                out.now.append(event)  # the spool ignores an event id it holds already
            else:
                pending[again.event_id] = event
            return
        up = self._spans.get((trace_id, parent.span_id)) if parent is not None else None
        down = [self._spans[k] for k in self._children(key) if k in self._spans]
        meta = event["metadata"]
        response = (meta["provider_name"], meta["response_id"]) if meta["response_id"] else None
        twin = self._spans.get(self._responses.get(response, (0, 0))) if response else None
        ours = is_ours(span)
        billed = True
        if ours:
            # Ours wins over a foreign span of the same call, unless that one is already out.
            for other in (up, *down, twin):
                if (
                    other is not None
                    and not other.ours
                    and not self._withdraw(other, now, out, pending)
                ):
                    billed = False
        elif (up is not None and up.ours) or any(d.ours for d in down) or down:
            billed = False  # around ours, inside ours, or around an inner GenAI span
        elif twin is not None:
            billed = False
        elif up is not None and not up.ours and not self._withdraw(up, now, out, pending):
            billed = False  # the outer foreign span's event is out already
        event_id = meta["event_id"] if billed else None
        held_until = 0.0
        if not billed:
            out.skipped += 1
        elif ours:
            out.now.append(event)
        else:
            pending[event_id] = event
            held_until = now + self.hold
        self._remember(key, parent, _Seen(ours, event_id, held_until), response)

    def _children(self, key: _Key) -> list[_Key]:
        return self._children_of.get(key, [])

    def _remember(
        self, key: _Key, parent: Any, seen: _Seen, response: tuple[str, str] | None
    ) -> None:
        self._spans[key] = seen
        if parent is not None:
            siblings = self._children_of.setdefault((key[0], parent.span_id), [])
            siblings.append(key)
        if response is not None and response not in self._responses:
            self._responses[response] = key
        for memory in (self._spans, self._children_of, self._responses):
            while len(memory) > self._capacity:
                memory.popitem(last=False)


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
