"""Each test starts from the SDKs' own methods: some instrumentations' ``uninstrument()`` leave
a wrapper behind (OpenLLMetry 0.62 keeps its OpenAI ones: ``unwrap`` does not follow the dotted
``"Completions.create"`` it passes), and a wrapper left by
one test would put a span of a shut-down TracerProvider between ours and theirs in the next."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator

import pytest
import wrapt

# The modules whose classes the tests' calls go through (imported before the snapshot).
_MODULES = (
    "openai",
    "openai.resources.chat.completions",
    "openai.resources.embeddings",
    "anthropic",
    "anthropic.resources.messages",
)


def _classes() -> list[type]:
    for name in _MODULES:
        importlib.import_module(name)
    found: list[type] = []
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("openai", "anthropic") and module is not None:
            found += [v for v in vars(module).values() if isinstance(v, type)]
    return list(dict.fromkeys(found))


_PROXY = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


@pytest.fixture(autouse=True)
def pristine_sdk_methods() -> Iterator[None]:
    """After each test, every SDK method is its undecorated self again."""
    yield
    for cls in _classes():
        for name, value in list(vars(cls).items()):
            original = value
            while isinstance(original, _PROXY):
                original = original.__wrapped__
            if original is not value:
                setattr(cls, name, original)
