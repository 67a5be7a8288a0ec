"""Exact per-token rates, and the few integer operations that price one call.

Rates are whole numbers of ``10**-scale`` USD per token, so a call's cost is a sum of integer
products: exact like ``Decimal``, cheaper than it, and immune to the app's decimal context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal

#: One price: ``(start, rate)`` pairs, highest ``start`` first, ending with ``(-1, base)``.
#: A tier applies to all tokens of its kind once the call's input tokens exceed ``start``.
Tiered = tuple[tuple[int, int], ...]

#: What a price is given as, in USD per million tokens: a number, or a base and its tiers.
PerMillion = Decimal | tuple[Decimal, Sequence[tuple[int, Decimal]]]

_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")
# Our own context: the thread's may have been narrowed by the app (prec=2 would round prices).
EXACT = Context(prec=80)


@dataclass(frozen=True, slots=True)
class Rates:
    """One model's prices. A kind without its own rate stays in its parent count.

    Cache reads and writes without a rate are priced as input, reasoning without one as
    output: the same rule as genai-prices and as SPEC section 12's prices file.
    """

    scale: int
    input: Tiered
    output: Tiered
    cache_read: Tiered | None = None
    cache_write: Tiered | None = None
    reasoning: Tiered | None = None
    per_call: int = 0

    def units(
        self, input: int, output: int, cache_read: int, cache_write: int, reasoning: int
    ) -> int | None:
        """The cost in ``10**-scale`` USD; None when the counts contradict each other."""
        plain_input = input
        total = self.per_call
        if self.cache_read is not None and cache_read:
            plain_input -= cache_read
            total += cache_read * _rate(self.cache_read, input)
        if self.cache_write is not None and cache_write:
            plain_input -= cache_write
            total += cache_write * _rate(self.cache_write, input)
        plain_output = output
        if self.reasoning is not None and reasoning:
            plain_output -= reasoning
            total += reasoning * _rate(self.reasoning, input)
        if plain_input < 0 or plain_output < 0:
            return None
        return (
            total
            + plain_input * _rate(self.input, input)
            + plain_output * _rate(self.output, input)
        )


def _rate(tiers: Tiered, input_tokens: int) -> int:
    for start, rate in tiers:
        if input_tokens > start:
            return rate
    return tiers[-1][1]


def build_rates(prices: Mapping[str, PerMillion | None], per_call: Decimal | None = None) -> Rates:
    """Rates from USD-per-million prices (``input`` and ``output`` required).

    Raises ``ValueError`` for a price that is missing, negative or not finite.
    """
    per_token: dict[str, tuple[tuple[int, Decimal], ...]] = {}
    for kind in _KINDS:
        price = prices.get(kind)
        if price is None:
            if kind in ("input", "output"):
                raise ValueError(f"no {kind} price")
            continue
        base, tiers = price if isinstance(price, tuple) else (price, ())
        steps = sorted(((int(start), value) for start, value in tiers), reverse=True)
        per_token[kind] = tuple(
            (start, _checked(value, kind).scaleb(-6, EXACT))
            for start, value in [*steps, (-1, base)]
        )
    call = _checked(per_call, "per-call").scaleb(-3, EXACT) if per_call else Decimal(0)
    every = [value for tiers in per_token.values() for _, value in tiers] + [call]
    scale = max(0, *(-int(value.normalize(EXACT).as_tuple().exponent) for value in every))

    def whole(value: Decimal) -> int:
        return int(value.scaleb(scale, EXACT))

    tiered = {
        kind: tuple((start, whole(value)) for start, value in tiers)
        for kind, tiers in per_token.items()
    }
    return Rates(scale=scale, per_call=whole(call), **tiered)


def _checked(value: object, kind: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise ValueError(f"{kind} price is not a number")
    value = Decimal(value)
    if not value.is_finite() or value < 0:
        raise ValueError(f"{kind} price must be a finite number >= 0")
    return value
