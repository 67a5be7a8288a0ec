"""Exporter settings: keyword arguments first, then ``CMDRDATA_*`` variables, validated once.

Two rules shape this module. Built from the environment (as ``opentelemetry-instrument`` does),
settings never raise: a raise there would switch off all of OpenTelemetry, so a bad value
becomes a *problem* the caller logs once, and delivery waits while events are kept. Passed
explicitly, a bad key or endpoint raises ``ValueError`` at once. And the API key never leaves
this object in readable form: ``repr`` and every message show at most a masked prefix.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_ENDPOINT = "https://api.cmdrdata.ai/api/events"
DEFAULT_TIMEOUT = 5.0
DEFAULT_CUSTOMER_ID = "unattributed"
DEFAULT_MAX_SPOOL_EVENTS = 1_000_000
SPOOL_FILE = "spool.sqlite3"
SPOOL_KINDS = ("sqlite", "memory")
SPAN_SOURCES = ("instrumentor", "genai")
MAX_TIMEOUT = 300.0

_KEY_RE = re.compile(r"^(?:cmd-live-v\d+-[A-Za-z0-9_-]+|tk-[A-Za-z0-9]{32,64})$")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

# Public keywords, each the lower-case name of a CMDRDATA_ variable.
_ENV_KEYS = (
    "api_key",
    "endpoint",
    "timeout",
    "spool_dir",
    "spool",
    "default_customer_id",
    "span_source",
    "disabled",
    "bill_unsampled",
    "cost",
    "prices_file",
    "customer_attributes",
)
DEFAULT_CUSTOMER_ATTRIBUTES = ("cmdrdata.customer_id",)
# Tuning knobs with no variable; the underscored ones exist so tests can run fast.
_TUNING_DEFAULTS: dict[str, float | int] = {
    "max_spool_events": DEFAULT_MAX_SPOOL_EVENTS,
    "shutdown_timeout": 5.0,
    "concurrency": 4,
    "_backoff_base": 0.5,
    "_backoff_cap": 60.0,
    "_auth_retry": 30.0,
    "_poll_interval": 1.0,
    "_batch_size": 16,
    # genai mode: seconds a foreign span's event waits for its call's other spans (calls.py)
    "foreign_hold": 30.0,
}

logger = logging.getLogger("cmdrdata_exporter")


def mask_key(key: str | None) -> str:
    """Show which kind of key this is without any of its secret part."""
    if not key:
        return "<none>"
    match = re.match(r"^(cmd-live-v\d+-|tk-)", key)
    return (match.group(1) if match else "") + "****"


def display_url(url: str) -> str:
    """The URL for a log line or the CLI: without a ``user:password@`` or a query string."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        return "<invalid URL>"
    return f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else parts.path


def default_spool_dir(environ: Mapping[str, str]) -> Path:
    """The per-user cache dir, as XDG describes it (no platformdirs dependency)."""
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cmdrdata"


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_problem(endpoint: str) -> str | None:
    """Why this URL cannot receive events, or None when it can."""
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
    except ValueError:
        return "is not a valid URL"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and host:
        if is_loopback_host(host):
            return None
        return "uses http:// for a non-loopback host; https:// is required"
    return "must be an https:// URL (http:// only for loopback hosts)"


def key_problem(key: str | None) -> str | None:
    if not key:
        return "is not set"
    if not _KEY_RE.match(key):
        return "is malformed (expected cmd-live-v1-... or tk- followed by 32-64 letters/digits)"
    return None


@dataclass(frozen=True)
class Problem:
    """One configuration problem; ``message`` never contains the API key."""

    level: int
    message: str
    blocks: str | None = None  # "auth" or "endpoint": events wait until this is fixed


@dataclass(frozen=True, repr=False)
class Settings:
    api_key: str | None
    endpoint: str
    timeout: float
    spool_dir: Path
    spool: str
    default_customer_id: str
    span_source: str
    disabled: bool
    bill_unsampled: bool
    customer_attributes: tuple[str, ...]
    max_spool_events: int
    shutdown_timeout: float
    concurrency: int
    backoff_base: float
    backoff_cap: float
    auth_retry: float
    poll_interval: float
    batch_size: int
    foreign_hold: float
    problems: tuple[Problem, ...] = field(default=())
    cost: bool = True
    prices_file: str | None = None

    @property
    def spool_path(self) -> Path:
        return self.spool_dir / SPOOL_FILE

    @property
    def blocked_by(self) -> str | None:
        """``auth`` or ``endpoint`` when the settings keep events waiting, else None."""
        return next((p.blocks for p in self.problems if p.blocks), None)

    @property
    def delivery_blocker(self) -> str | None:
        """Why events must wait in the spool (bad key or endpoint), else None."""
        for problem in self.problems:
            if problem.blocks:
                return problem.message
        return None

    def __repr__(self) -> str:
        return (
            f"Settings(api_key={mask_key(self.api_key)!r}, endpoint={self.endpoint!r}, "
            f"timeout={self.timeout}, spool={self.spool!r}, spool_dir={str(self.spool_dir)!r}, "
            f"span_source={self.span_source!r}, disabled={self.disabled}, "
            f"bill_unsampled={self.bill_unsampled})"
        )

    __str__ = __repr__


class _Resolver:
    """Collects values and problems; raises only for explicit keyword arguments."""

    def __init__(self, overrides: Mapping[str, Any], environ: Mapping[str, str]):
        self.overrides = overrides
        self.environ = environ
        self.problems: list[Problem] = []

    def raw(self, name: str) -> tuple[Any, bool, str]:
        """(value, explicit?, where it came from) for one public setting."""
        var = "CMDRDATA_" + name.upper()
        if name in self.overrides and self.overrides[name] is not None:
            return self.overrides[name], True, f"{name}="
        return self.environ.get(var), False, var

    def bad(self, explicit: bool, message: str, *, blocks: str | None = None, level=logging.ERROR):
        if explicit:
            raise ValueError(message)
        self.problems.append(Problem(level, message, blocks))

    def boolean(self, name: str, default: bool) -> bool:
        value, explicit, where = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self.bad(
            explicit,
            f"{where} has invalid value {str(value)!r} (expected true or false); "
            f"using the default {str(default).lower()}",
            level=logging.WARNING,
        )
        return default

    def choice(self, name: str, options: tuple[str, ...]) -> str:
        value, explicit, where = self.raw(name)
        if value is None or str(value).strip() == "":
            return options[0]
        text = str(value).strip().lower()
        if text in options:
            return text
        self.bad(
            explicit,
            f"{where} has invalid value {str(value)!r} (expected one of "
            f"{', '.join(options)}); using the default {options[0]!r}",
            level=logging.WARNING,
        )
        return options[0]

    def timeout(self) -> float:
        value, explicit, where = self.raw("timeout")
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULT_TIMEOUT
        try:
            if isinstance(value, bool):
                raise TypeError
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if 0 < number <= MAX_TIMEOUT:
            return number
        self.bad(
            explicit,
            f"{where} has invalid value {str(value)!r} (expected seconds, 0 < t <= "
            f"{MAX_TIMEOUT:g}); using the default {DEFAULT_TIMEOUT:g}",
        )
        return DEFAULT_TIMEOUT

    def api_key(self) -> str | None:
        value, explicit, where = self.raw("api_key")
        key = value.strip() if isinstance(value, str) else value
        if explicit and not isinstance(key, str):
            raise ValueError("api_key= must be a string")
        problem = key_problem(key)
        if problem is None:
            return key
        # The value itself is never quoted: it may be a real key with a typo.
        self.bad(
            explicit,
            f"{where} {problem}; events are kept in the spool until a valid key is configured",
            blocks="auth",
        )
        return None

    def endpoint(self) -> str:
        value, explicit, where = self.raw("endpoint")
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULT_ENDPOINT
        endpoint = str(value).strip()
        problem = endpoint_problem(endpoint)
        if problem:
            self.bad(
                explicit,
                f"{where} {endpoint!r} {problem}; events are kept in the spool until it is fixed",
                blocks="endpoint",
            )
        return endpoint

    def names(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """A comma-separated list (or, as a keyword, any sequence) of attribute names."""
        value, explicit, where = self.raw(name)
        if value is None:
            return default
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            self.bad(explicit, f"{where} must be comma-separated attribute names")
            return default
        names = tuple(dict.fromkeys(i.strip() for i in items if i.strip()))
        return names or default

    def text(self, name: str, default: str) -> str:
        value, explicit, where = self.raw(name)
        if value is None or not str(value).strip():
            return default
        if explicit and not isinstance(value, (str, os.PathLike)):
            raise ValueError(f"{where} must be a string")
        return str(value).strip()


def resolve(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from keyword overrides and the environment.

    Unknown keywords raise ``TypeError``; bad explicit ``api_key``/``endpoint``/... raise
    ``ValueError``; bad environment values only add to ``Settings.problems``.
    """
    overrides = dict(overrides or {})
    environ = os.environ if environ is None else environ
    unknown = sorted(set(overrides) - set(_ENV_KEYS) - set(_TUNING_DEFAULTS))
    if unknown:
        raise TypeError(
            f"CmdrDataSpanExporter() got unexpected keyword argument(s): {', '.join(unknown)}; "
            f"accepted: {', '.join(_ENV_KEYS + tuple(k for k in _TUNING_DEFAULTS if k[0] != '_'))}"
        )
    r = _Resolver(overrides, environ)
    tuning = {}
    for name, default in _TUNING_DEFAULTS.items():
        value = overrides.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name}= must be a positive number")
        tuning[name] = type(default)(value)
    spool_dir = r.text("spool_dir", "")
    return Settings(
        api_key=r.api_key(),
        endpoint=r.endpoint(),
        timeout=r.timeout(),
        spool_dir=Path(spool_dir).expanduser() if spool_dir else default_spool_dir(environ),
        spool=r.choice("spool", SPOOL_KINDS),
        default_customer_id=r.text("default_customer_id", DEFAULT_CUSTOMER_ID),
        span_source=r.choice("span_source", SPAN_SOURCES),
        disabled=r.boolean("disabled", False),
        bill_unsampled=r.boolean("bill_unsampled", True),
        customer_attributes=r.names("customer_attributes", DEFAULT_CUSTOMER_ATTRIBUTES),
        max_spool_events=int(tuning["max_spool_events"]),
        shutdown_timeout=float(tuning["shutdown_timeout"]),
        concurrency=int(tuning["concurrency"]),
        backoff_base=float(tuning["_backoff_base"]),
        backoff_cap=float(tuning["_backoff_cap"]),
        auth_retry=float(tuning["_auth_retry"]),
        poll_interval=float(tuning["_poll_interval"]),
        batch_size=int(tuning["_batch_size"]),
        cost=r.boolean("cost", True),
        prices_file=r.text("prices_file", "") or None,
        foreign_hold=float(tuning["foreign_hold"]),
        problems=tuple(r.problems),
    )
