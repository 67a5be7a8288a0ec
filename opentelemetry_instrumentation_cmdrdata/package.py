"""Which provider SDK versions this instrumentation supports.

The providers are alternatives: any one installed is enough, so they are
declared under the ``instruments-any`` extra and each is checked on its own
when the instrumentor starts (``providers/__init__.py``).
"""

_instruments: tuple[str, ...] = ()

_instruments_any: tuple[str, ...] = (
    "openai >= 2.0.0, < 4",
    "anthropic >= 1.0.0, < 3",
    "google-genai >= 1.30.0, < 4",
)

_supports_metrics = True
