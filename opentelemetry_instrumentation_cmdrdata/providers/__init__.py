"""The provider registry: which SDKs we know and where their hooks live.

A provider whose SDK is not installed is skipped silently; one whose SDK
version is outside the supported range is skipped with one warning. Nothing
here imports an SDK: the instrumentor wraps each one when the app imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import TYPE_CHECKING

from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

from ..package import _instruments_any

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..telemetry import Telemetry
    from .base import ProviderHooks

_log = logging.getLogger("opentelemetry_instrumentation_cmdrdata")

# name used by instrument(providers=...) -> (SDK import name, hooks module, hooks class, dist name)
PROVIDERS: dict[str, tuple[str, str, str, str]] = {
    "openai": ("openai", ".openai", "OpenAIHooks", "openai"),
    "anthropic": ("anthropic", ".anthropic", "AnthropicHooks", "anthropic"),
    "google_genai": ("google.genai", ".google_genai", "GoogleGenAIHooks", "google-genai"),
}
# SPEC section 9 names whose provider modules are still to come: name -> SDK import name.
NOT_YET: dict[str, str] = {
    "bedrock": "botocore",
    "mistralai": "mistralai",
    "cohere": "cohere",
    "groq": "groq",
    "ollama": "ollama",
    "litellm": "litellm",
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


def available(
    names: list[str] | None,
) -> list[tuple[str, str, Callable[[Telemetry], ProviderHooks]]]:
    """(name, SDK module, hooks factory) of each requested provider that is installed and
    supported; no SDK is imported here, so ``instrument()`` stays cheap."""
    if names is None:
        names = list(PROVIDERS)
    unknown = [name for name in names if name not in PROVIDERS and name not in NOT_YET]
    if unknown:
        choices = sorted({*PROVIDERS, *NOT_YET})
        raise ValueError(f"unknown provider(s) {unknown!r}; choose from {choices}")
    found = []
    for name in names:
        if name in NOT_YET:
            # A name of the contract whose module has not landed: the app must not break on
            # it, and its calls must not go unbilled without a word.
            if _installed(NOT_YET[name]):
                _log.warning(
                    "cmdrdata: %s calls are not instrumented by this version yet; "
                    "they are not billed",
                    name,
                )
            continue
        sdk_module, hooks_module, class_name, dist = PROVIDERS[name]
        if not _installed(sdk_module):
            continue
        requirement = _requirement(dist)
        if requirement:
            conflict = get_dependency_conflicts([requirement])
            if conflict is not None:
                _log.warning("cmdrdata: %s; %s calls are not instrumented", conflict, name)
                continue
        found.append((name, sdk_module, _factory(hooks_module, class_name)))
    return found


def _factory(hooks_module: str, class_name: str) -> Callable[[Telemetry], ProviderHooks]:
    def build(telemetry: Telemetry) -> ProviderHooks:
        module = importlib.import_module(hooks_module, __name__)
        return getattr(module, class_name)(telemetry)

    return build
