"""``CMDRDATA_PRICES_FILE``: your negotiated rates, USD per million tokens (SPEC section 12).

``{"openai": {"gpt-4o-mini": {"input": 0.15, "output": 0.6, "cache_read": 0.075}}}``, keyed by
``gen_ai.provider.name`` then the exact model id. Numbers are read as decimals straight from
the JSON text, so ``0.15`` is exactly 0.15, never the nearest binary float.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from .rates import Rates, build_rates

_FIELDS = frozenset(("input", "output", "cache_read", "cache_write", "reasoning"))


class PricesFileError(ValueError):
    """The file cannot be used; the message names what is wrong, never a price."""


def load_prices_file(path: str | Path) -> dict[tuple[str, str], Rates]:
    """``{(provider, model): Rates}`` from the file; raises ``PricesFileError``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PricesFileError(f"cannot be read ({type(exc).__name__}: {exc})") from None
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except ValueError as exc:
        raise PricesFileError(f"is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PricesFileError("must be a JSON object keyed by gen_ai.provider.name")
    table: dict[tuple[str, str], Rates] = {}
    for provider, models in data.items():
        if not isinstance(models, dict):
            raise PricesFileError(f"{provider!r} must map model ids to prices")
        for model, prices in models.items():
            table[(provider, model)] = _model_rates(provider, model, prices)
    return table


def _model_rates(provider: str, model: str, prices: Any) -> Rates:
    where = f"{provider!r} / {model!r}"
    if not isinstance(prices, dict):
        raise PricesFileError(f"{where} must be an object of prices")
    unknown = sorted(set(prices) - _FIELDS)
    if unknown:
        raise PricesFileError(f"{where} has unknown field(s) {', '.join(unknown)}")
    try:
        return build_rates(prices)
    except ValueError as exc:
        raise PricesFileError(f"{where}: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a price")
