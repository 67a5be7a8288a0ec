"""The provider registry: which SDKs we know and where their hooks live.

A provider whose SDK is not installed is skipped silently; one whose SDK
version is outside the supported range is skipped with one warning.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import TYPE_CHECKING

from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

from ..package import _instruments_any

if TYPE_CHECKING:
    from ..telemetry import Telemetry
    from .base import ProviderHooks

_log = logging.getLogger("opentelemetry_instrumentation_cmdrdata")

# name used by instrument(providers=...) -> (SDK import name, hooks module, hooks class, dist name)
PROVIDERS: dict[str, tuple[str, str, str, str]] = {
    "openai": ("openai", ".openai", "OpenAIHooks", "openai"),
    "anthropic": ("anthropic", ".anthropic", "AnthropicHooks", "anthropic"),
    "google_genai": ("google.genai", ".google_genai", "GoogleGenAIHooks", "google-genai"),
}


def _requirement(dist: str) -> str | None:
    for requirement in _instruments_any:
        if requirement.split()[0] == dist:
            return requirement
    return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def load_hooks(names: list[str] | None, telemetry: Telemetry) -> list[ProviderHooks]:
    """Build the hooks of every requested provider whose SDK is installed and supported."""
    if names is None:
        names = list(PROVIDERS)
    unknown = [name for name in names if name not in PROVIDERS]
    if unknown:
        raise ValueError(f"unknown provider(s) {unknown!r}; choose from {sorted(PROVIDERS)}")
    hooks: list[ProviderHooks] = []
    for name in names:
        sdk_module, hooks_module, class_name, dist = PROVIDERS[name]
        if not _installed(sdk_module):
            continue
        requirement = _requirement(dist)
        if requirement:
            conflict = get_dependency_conflicts([requirement])
            if conflict is not None:
                _log.warning("cmdrdata: %s; %s calls are not instrumented", conflict, name)
                continue
        try:
            module = importlib.import_module(hooks_module, __name__)
            hooks.append(getattr(module, class_name)(telemetry))
        except ImportError as exc:
            _log.debug("cmdrdata: %s not instrumented: %s", name, exc)
    return hooks
