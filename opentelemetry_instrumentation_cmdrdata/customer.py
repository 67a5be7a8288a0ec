"""Who is billed: the end customer's id, carried in OpenTelemetry baggage.

``customer_context("cust-42", plan="pro")`` makes two kinds of baggage entries current for
its block, under the same names as the span attributes the instrumentor writes::

    cmdrdata.customer_id=cust-42
    cmdrdata.metadata.plan=pro

Baggage lives in ``contextvars``: concurrent asyncio tasks each see their own customer, and
the W3C ``baggage`` header carries it to your other services. Plain threads and
``ThreadPoolExecutor`` workers start from an empty context; copy it across::

    ctx = contextvars.copy_context()
    executor.submit(ctx.run, work)

**Metadata follows its customer.** A nested block with a different customer id replaces
the outer metadata (none of it is billed to the inner customer); a nested block with the
same id merges, its own keys winning.

**No customer.** ``customer_context(None)`` (and ``set_customer_id(None)``) is an anonymous
block: it removes the ``cmdrdata.*`` entries for its block, so its calls are billed to the
exporter's default customer exactly as if no customer had ever been set, and neither an
outer customer nor its metadata shows through; the outer one is back on exit. Metadata
given with ``None`` is validated and then left out: there is no customer to bill it to.

**Encoding.** Values are stored as plain text in the Python baggage (no encoding of our
own). The facts this rests on, checked in opentelemetry-api 1.45.2
(``opentelemetry.baggage.propagation``):

- ``inject`` writes ``quote_plus(key)=quote_plus(value)``: any Unicode becomes
  percent-encoded UTF-8, and ``; , = % + / :`` and spaces are escaped too, so the header is
  pure ASCII (``cust 42/ü`` is sent as ``cust+42%2F%C3%BC``).
- ``extract`` drops an entry only when the *raw header* holds non-ASCII bytes (which a
  conforming sender never writes), then applies ``unquote_plus`` and strips surrounding
  whitespace. So every id this module accepts comes back identical, and surrounding
  whitespace of metadata values is trimmed up front for the same reason.
- Encoding the value ourselves first would get it encoded a second time (``%`` ->
  ``%25``): a 256-character id of 4-byte characters would grow to 5 KB and be dropped by
  the 4096-byte per-entry limit. Plain text stays under 3.3 KB, signature included.
- W3C *properties* (``value;name=x``) are not parsed by the Python API: on extract they
  stay in the value text, on inject the ``;`` is escaped as ``%3B``. Either way the text
  comes back verbatim in the next service, Python or not.
- Limits: 4096 bytes per entry, 180 entries, 8192 bytes per header (an extracted header
  over 8192 bytes is dropped whole). This module writes its entries first, keeps their
  encoded size under :data:`MAX_ENCODED_ATTRIBUTION_BYTES` and raises ``ValueError``
  beyond it, rather than letting the propagator drop entries silently.

**Signing** (opt-in: ``CMDRDATA_BAGGAGE_SECRET``). Inbound baggage is written by whoever
calls your service. With the secret set, the customer entry carries an HMAC-SHA256
signature as a W3C property, ``cmdrdata.customer_id=cust-42;cmdrdata.sig=v1.<id>.<meta>``:

- ``<id>`` authenticates the customer id; an entry without it, or with a wrong one, is
  ignored (the call is unattributed).
- ``<meta>`` authenticates the id together with the sorted metadata entries; when they do
  not match (metadata added, changed, removed or moved to another id), the metadata is
  ignored and the id is still billed.
- Both are unpadded base64url, computed with a domain-separated, length-prefixed message.
  Every service that shares the secret accepts them; the secret never appears in a log.
- A valid signature can be replayed by anyone who captured the header: it proves the entry
  was written by a holder of the secret, not when.

The secret is read from the environment on first use and cached; ``_reload_settings()``
reads it again.
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
import re
from collections.abc import Mapping
from contextvars import Token
from types import TracebackType
from typing import NamedTuple, TypeVar
from urllib.parse import quote_plus

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry.context.context import Context

from opentelemetry_instrumentation_cmdrdata.logs import LogOnce
from opentelemetry_instrumentation_cmdrdata.semconv import (
    CMDRDATA_CUSTOMER_ID,
    CMDRDATA_METADATA_PREFIX,
)

__all__ = [
    "MAX_CUSTOMER_ID_LENGTH",
    "MAX_ENCODED_ATTRIBUTION_BYTES",
    "MAX_METADATA_ENTRIES",
    "MAX_METADATA_KEY_LENGTH",
    "MAX_METADATA_VALUE_LENGTH",
    "SECRET_ENV",
    "CustomerContext",
    "coerce_call_customer_id",
    "coerce_call_metadata",
    "context_without_attribution",
    "customer_context",
    "read_attribution",
    "reset_customer_id",
    "set_customer_id",
    "split_attribution",
]

_logger = logging.getLogger("opentelemetry_instrumentation_cmdrdata.customer")

SECRET_ENV = "CMDRDATA_BAGGAGE_SECRET"
MAX_CUSTOMER_ID_LENGTH = 256
MAX_METADATA_KEY_LENGTH = 64
MAX_METADATA_VALUE_LENGTH = 256
MAX_METADATA_ENTRIES = 32
# Our share of the propagator's 8192-byte header, leaving room for the app's own entries.
MAX_ENCODED_ATTRIBUTION_BYTES = 6144

_NAMESPACE = "cmdrdata."
_SIG_NAME = "cmdrdata.sig"
_SIG_VERSION = "v1"
_SIG_MARKER = ";" + _SIG_NAME + "="
# The signature property, tolerating the optional whitespace W3C allows around ";" and "=".
_SIG_PATTERN = re.compile(r"[ \t]*;[ \t]*cmdrdata\.sig[ \t]*=[ \t]*([^;]*)")
_METADATA_KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
# Unicode category Cc: C0, DEL and C1. A newline or NUL inside an id splits log lines, CSV
# rows and invoices downstream, so such ids are refused wherever they enter.
_CONTROL_PATTERN = re.compile("[\x00-\x1f\x7f-\x9f]")
_ID_DOMAIN = b"cmdrdata.customer_id/v1\x00"
_METADATA_DOMAIN = b"cmdrdata.metadata/v1\x00"
_MAC_CACHE_SIZE = 1024
_K = TypeVar("_K")


# --- settings -------------------------------------------------------------------------


class _Settings:
    """Configuration resolved once from the environment, and the MACs computed with it."""

    __slots__ = ("id_macs", "metadata_macs", "secret")

    def __init__(self, secret: bytes | None) -> None:
        self.secret = secret
        # The same few customers are read on every call of a request: remember their
        # expected MACs instead of computing two HMACs per call.
        self.id_macs: dict[str, str] = {}
        self.metadata_macs: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    @classmethod
    def from_env(cls) -> _Settings:
        raw = os.environ.get(SECRET_ENV, "").strip()
        return cls(os.fsencode(raw) if raw else None)


_settings: _Settings | None = None
# Each reason is warned about once (until the settings are reloaded); repeats are dropped.
_warned = LogOnce(_logger, repeat_level=None)


def _get_settings() -> _Settings:
    settings = _settings
    if settings is None:
        settings = _reload_settings()
    return settings


def _reload_settings() -> _Settings:
    """Read ``CMDRDATA_BAGGAGE_SECRET`` again, and forget which warnings were logged."""
    global _settings
    settings = _Settings.from_env()
    _settings = settings
    _warned.reset()
    return settings


def _warn_once(reason: str, message: str, *args: object) -> None:
    _warned.log(reason, logging.WARNING, message, *args)


# --- validation -----------------------------------------------------------------------


class _Problem(NamedTuple):
    reason: str
    error: type[Exception]
    detail: str  # never holds the value itself: it goes to WARNING logs too


def _is_utf8_encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_customer_id(value: object) -> str | _Problem:
    """The trimmed id, or what is wrong with it."""
    if not isinstance(value, str):
        return _Problem("type", TypeError, f"must be a str, not {type(value).__name__}")
    customer_id = value.strip()
    if not customer_id:
        return _Problem("empty", ValueError, "must not be empty or only whitespace")
    if len(customer_id) > MAX_CUSTOMER_ID_LENGTH:
        return _Problem(
            "too_long",
            ValueError,
            f"is {len(customer_id)} characters long after trimming; the limit is "
            f"{MAX_CUSTOMER_ID_LENGTH} and ids are never truncated",
        )
    if not _is_utf8_encodable(customer_id):
        return _Problem(
            "not_utf8", ValueError, "contains unpaired surrogates and cannot be encoded as UTF-8"
        )
    control = _CONTROL_PATTERN.search(customer_id)
    if control:
        return _Problem(
            "control",
            ValueError,
            f"contains a control character (U+{ord(control.group()):04X}); newlines, tabs, NUL "
            "and the other Unicode Cc characters are not allowed inside an id",
        )
    if _SIG_PATTERN.search(customer_id):
        return _Problem(
            "reserved", ValueError, f"must not contain {_SIG_MARKER!r}, which marks the signature"
        )
    return customer_id


def _validate_customer_id(value: object) -> str | None:
    """The trimmed id; None stays None ("no customer"). Raises for anything else invalid."""
    if value is None:
        return None
    checked = _check_customer_id(value)
    if isinstance(checked, _Problem):
        # The id itself never goes into the message, not even a prefix of it: exceptions
        # end up in error trackers and logs.
        raise checked.error(f"customer_id {checked.detail}")
    return checked


def _check_metadata_entry(key: object, value: object) -> tuple[str, str] | _Problem:
    if not isinstance(key, str):
        return _Problem("key_type", TypeError, f"key must be a str, not {type(key).__name__}")
    if len(key) > MAX_METADATA_KEY_LENGTH or not _METADATA_KEY_PATTERN.fullmatch(key):
        return _Problem(
            "key_invalid",
            ValueError,
            f"key must be 1 to {MAX_METADATA_KEY_LENGTH} characters of ASCII letters, digits, "
            "'_', '.' or '-', not starting with a digit, '.' or '-'",
        )
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, int, float)):
        text = str(value).strip()
    else:
        return _Problem(
            "value_type",
            TypeError,
            f"value for {key!r} must be a str, int, float or bool, not {type(value).__name__}",
        )
    if len(text) > MAX_METADATA_VALUE_LENGTH:
        return _Problem(
            "value_too_long",
            ValueError,
            f"value for {key!r} is {len(text)} characters long after trimming; "
            f"the limit is {MAX_METADATA_VALUE_LENGTH}",
        )
    if not _is_utf8_encodable(text):
        return _Problem(
            "value_not_utf8",
            ValueError,
            f"value for {key!r} contains unpaired surrogates and cannot be encoded as UTF-8",
        )
    return key, text


def _validate_metadata(metadata: Mapping[str, object]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise ValueError(
            f"customer metadata has {len(metadata)} entries; the limit is {MAX_METADATA_ENTRIES}"
        )
    validated: dict[str, str] = {}
    for key, value in metadata.items():
        checked = _check_metadata_entry(key, value)
        if isinstance(checked, _Problem):
            raise checked.error(f"metadata {checked.detail}")
        validated[checked[0]] = checked[1]
    return validated


# --- signing --------------------------------------------------------------------------


def _mac(secret: bytes, message: bytes) -> str:
    digest = hmac.digest(secret, message, "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _frame(text: str) -> bytes:
    # Length-prefixed, so no choice of ids, keys or values can make two inputs collide.
    data = text.encode("utf-8", "surrogatepass")
    return b"%d:%s" % (len(data), data)


def _remember(cache: dict[_K, str], key: _K, value: str) -> None:
    if len(cache) >= _MAC_CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _id_mac(settings: _Settings, secret: bytes, customer_id: str) -> str:
    mac = settings.id_macs.get(customer_id)
    if mac is None:
        mac = _mac(secret, _ID_DOMAIN + _frame(customer_id))
        _remember(settings.id_macs, customer_id, mac)
    return mac


def _metadata_mac(
    settings: _Settings, secret: bytes, customer_id: str, metadata: Mapping[str, str]
) -> str:
    items = tuple(sorted(metadata.items()))
    mac = settings.metadata_macs.get((customer_id, items))
    if mac is None:
        parts = [_METADATA_DOMAIN, _frame(customer_id)]
        for key, value in items:
            parts.append(_frame(key))
            parts.append(_frame(value))
        mac = _mac(secret, b"".join(parts))
        _remember(settings.metadata_macs, (customer_id, items), mac)
    return mac


def _signature(
    settings: _Settings, secret: bytes, customer_id: str, metadata: Mapping[str, str]
) -> str:
    id_mac = _id_mac(settings, secret, customer_id)
    return f"{_SIG_VERSION}.{id_mac}.{_metadata_mac(settings, secret, customer_id, metadata)}"


def _split_signature(raw: str) -> tuple[str, str | None]:
    """Split ``id;cmdrdata.sig=...`` into the id and the signature (or None)."""
    at = raw.rfind(_SIG_NAME)
    if at < 0:
        return raw, None
    # Fast path: the exact form this module writes, last in the value.
    start = at - 1
    if start >= 0 and raw[start] == ";" and raw.startswith("=", at + len(_SIG_NAME)):
        signature = raw[at + len(_SIG_NAME) + 1 :]
        if ";" not in signature and " " not in signature and "\t" not in signature:
            return raw[:start], signature
    # Another SDK may have added spaces or further properties.
    matches = list(_SIG_PATTERN.finditer(raw))
    if not matches:
        return raw, None
    match = matches[-1]  # ours is appended last; the id itself can never hold one
    return raw[: match.start()], match.group(1).strip(" \t")


# --- reading --------------------------------------------------------------------------


def _baggage_metadata(entries: Mapping[str, object]) -> dict[str, str]:
    prefix = CMDRDATA_METADATA_PREFIX
    start = len(prefix)
    return {
        key[start:]: value if isinstance(value, str) else str(value)
        for key, value in entries.items()
        if isinstance(key, str) and key.startswith(prefix) and len(key) > start
    }


def _read(
    raw: object, context: Context | None, settings: _Settings, warn: bool
) -> tuple[str | None, dict[str, str]]:
    text = raw if isinstance(raw, str) else str(raw)
    unchecked, signature = _split_signature(text)
    customer_id = _check_customer_id(unchecked)
    if isinstance(customer_id, _Problem):
        if warn:
            _warn_once(
                "baggage." + customer_id.reason,
                "cmdrdata.customer_id baggage ignored: the id %s; the call is unattributed",
                customer_id.detail,
            )
        return None, {}
    metadata = _baggage_metadata(otel_baggage.get_all(context))
    secret = settings.secret
    if secret is None:
        return customer_id, metadata

    if signature is None:
        if warn:
            _warn_once(
                "baggage.unsigned",
                "unsigned cmdrdata.customer_id baggage ignored: %s is set, so only entries "
                "signed by customer_context() or set_customer_id() count; the call is "
                "unattributed",
                SECRET_ENV,
            )
        return None, {}
    parts = signature.split(".")
    if (
        len(parts) != 3
        or parts[0] != _SIG_VERSION
        or not signature.isascii()
        or not hmac.compare_digest(parts[1], _id_mac(settings, secret, customer_id))
    ):
        if warn:
            _warn_once(
                "baggage.forged",
                "forged cmdrdata.customer_id baggage ignored: its signature does not match "
                "(tampered, or signed with another %s); the call is unattributed",
                SECRET_ENV,
            )
        return None, {}
    if metadata and not hmac.compare_digest(
        parts[2], _metadata_mac(settings, secret, customer_id, metadata)
    ):
        if warn:
            _warn_once(
                "baggage.metadata_unsigned",
                "cmdrdata.metadata.* baggage ignored: it does not match the signature of its "
                "cmdrdata.customer_id entry (added, changed or removed outside "
                "customer_context()); the customer id is still used",
            )
        return customer_id, {}
    return customer_id, metadata


def read_attribution(context: Context | None = None) -> tuple[str | None, dict[str, str]]:
    """The customer id and metadata in the baggage of ``context`` (default: the current one).

    Returns ``(customer_id, {key: value})`` with the metadata keys stripped of their
    ``cmdrdata.metadata.`` prefix, or ``(None, {})`` when there is no customer entry, or
    when it is invalid or (with ``CMDRDATA_BAGGAGE_SECRET`` set) unsigned or forged; each
    reason is logged once per process at WARNING. Metadata without a customer entry is
    ignored. The returned dict is new on every call: callers may change it. Never raises
    for anything found in the baggage.
    """
    raw = otel_baggage.get_baggage(CMDRDATA_CUSTOMER_ID, context)
    if raw is None:
        return None, {}
    return _read(raw, context, _get_settings(), warn=True)


# --- writing --------------------------------------------------------------------------


def _is_attribution_key(key: object) -> bool:
    return isinstance(key, str) and (
        key == CMDRDATA_CUSTOMER_ID or key.startswith(CMDRDATA_METADATA_PREFIX)
    )


def _encoded_size(entries: Mapping[str, str]) -> int:
    # What W3CBaggagePropagator.inject writes for these entries, separators included.
    return sum(
        len(quote_plus(key)) + 1 + len(quote_plus(value)) + 1 for key, value in entries.items()
    )


def _attributed_context(
    customer_id: str | None, metadata: Mapping[str, str], context: Context | None = None
) -> Context:
    """``context`` (default: current) with its attribution baggage replaced.

    ``customer_id=None`` removes it (an anonymous block): what is then read is "no customer".
    """
    if context is None:
        context = otel_context.get_current()
    if customer_id is None:
        return context_without_attribution(context)
    settings = _get_settings()

    raw_outer = otel_baggage.get_baggage(CMDRDATA_CUSTOMER_ID, context)
    merged: dict[str, str] = {}
    if raw_outer is not None:
        outer_id, outer_metadata = _read(raw_outer, context, settings, warn=False)
        if outer_id == customer_id:
            merged.update(outer_metadata)
    merged.update(metadata)
    if len(merged) > MAX_METADATA_ENTRIES:
        raise ValueError(
            f"customer metadata has {len(merged)} entries (outer blocks for the same customer "
            f"included); the limit is {MAX_METADATA_ENTRIES}"
        )

    value = customer_id
    if settings.secret is not None:
        value += _SIG_MARKER + _signature(settings, settings.secret, customer_id, merged)
    ours = {CMDRDATA_CUSTOMER_ID: value}
    for key in sorted(merged):
        ours[CMDRDATA_METADATA_PREFIX + key] = merged[key]
    size = _encoded_size(ours)
    if size > MAX_ENCODED_ATTRIBUTION_BYTES:
        raise ValueError(
            f"customer id and metadata take {size} bytes in the W3C baggage header; the limit "
            f"is {MAX_ENCODED_ATTRIBUTION_BYTES} (non-ASCII characters take up to 12 bytes "
            "each once percent-encoded): use shorter metadata values"
        )

    # Ours first: when the header overflows, the propagator drops the entries at the end.
    others = {
        key: val
        for key, val in otel_baggage.get_all(context).items()
        if not _is_attribution_key(key)
    }
    new_context = otel_baggage.clear(context)
    for key, val in (*ours.items(), *others.items()):
        new_context = otel_baggage.set_baggage(key, val, new_context)
    return new_context


class CustomerContext:
    """Makes a customer id (and its metadata) current for a ``with`` or ``async with`` block.

    Build it with :func:`customer_context`. The arguments are validated when it is built;
    the baggage is attached on enter and the outer context restored on exit. An instance
    may be nested in itself, but do not enter one instance from several tasks or threads
    at once: build one per block.
    """

    __slots__ = ("_customer_id", "_metadata", "_tokens")

    def __init__(self, customer_id: str | None, metadata: Mapping[str, object]) -> None:
        self._customer_id = _validate_customer_id(customer_id)
        self._metadata = _validate_metadata(metadata)
        self._tokens: list[Token[Context]] = []

    @property
    def customer_id(self) -> str | None:
        """The trimmed id that is billed; None for an anonymous block (the default customer)."""
        return self._customer_id

    @property
    def metadata(self) -> dict[str, str]:
        """This block's own metadata, as strings (merged ones from outer blocks excluded).

        Always empty for an anonymous block: metadata given with ``None`` is not attached.
        """
        return {} if self._customer_id is None else dict(self._metadata)

    def __enter__(self) -> CustomerContext:
        context = _attributed_context(self._customer_id, self._metadata)
        self._tokens.append(otel_context.attach(context))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        otel_context.detach(self._tokens.pop())

    async def __aenter__(self) -> CustomerContext:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)

    def __repr__(self) -> str:
        return f"customer_context({self._customer_id!r}, **{self._metadata!r})"


def customer_context(
    customer_id: str | None, /, **metadata: str | int | float | bool
) -> CustomerContext:
    """Bill the LLM calls made inside the block to ``customer_id``.

    ::

        with customer_context("cust-42", plan="pro"):
            client.chat.completions.create(...)

        with customer_context(user.org_id if user else None):  # None: anonymous
            client.chat.completions.create(...)

    Works as a plain ``with`` in sync and async code (and as ``async with``). The id is
    trimmed and must then be 1 to 256 characters of any Unicode but control characters
    (newline, tab, NUL, the rest of category Cc); metadata keys are ASCII names (letters,
    digits, ``_ . -``), values str, int, float or bool (stored as strings; bools as
    ``true``/``false``; values trimmed, at most 256 characters). A nested block with another
    id drops the outer metadata; with the same id it merges. Other baggage entries are kept.
    ``None`` is an anonymous block: its calls go to the default customer, nothing of an
    outer customer shows through, and its metadata is left out. Raises ``TypeError`` (wrong
    type) or ``ValueError`` (empty, too long, a control character), never truncates; the
    message never holds the id itself beyond a short prefix of an over-long one.
    """
    return CustomerContext(customer_id, metadata)


def set_customer_id(
    customer_id: str | None, /, **metadata: str | int | float | bool
) -> Token[Context]:
    """Like :func:`customer_context` without a block: attach now, return the token.

    For frameworks with before/after request hooks, where ``None`` marks an anonymous
    request. Pass the token to :func:`reset_customer_id` in the same thread or task, in
    reverse order of the sets.
    """
    context = _attributed_context(_validate_customer_id(customer_id), _validate_metadata(metadata))
    return otel_context.attach(context)


def reset_customer_id(token: Token[Context]) -> None:
    """Restore the context that was current before :func:`set_customer_id` returned ``token``."""
    otel_context.detach(token)


def context_without_attribution(context: Context | None = None) -> Context:
    """``context`` (default: current) without any ``cmdrdata.*`` baggage entry.

    Attach it around the SDK's own HTTP request so that no ``baggage`` header sent to the AI
    provider carries customer ids. All other baggage entries are kept. When there is no
    ``cmdrdata.*`` entry, the very same context object is returned.
    """
    if context is None:
        context = otel_context.get_current()
    entries = otel_baggage.get_all(context)
    if not entries:
        return context
    for key in entries:
        if isinstance(key, str) and key.startswith(_NAMESPACE):
            break
    else:
        return context
    stripped = otel_baggage.clear(context)
    for key, value in entries.items():
        if not (isinstance(key, str) and key.startswith(_NAMESPACE)):
            stripped = otel_baggage.set_baggage(key, value, stripped)
    return stripped


def split_attribution(context: Context) -> tuple[str | None, dict[str, str], Context]:
    """``read_attribution(context)`` and ``context_without_attribution(context)`` at once.

    The per-call path: with no baggage at all (the common case) one lookup answers both.
    """
    if not otel_baggage.get_all(context):
        return None, {}, context
    customer_id, metadata = read_attribution(context)
    return customer_id, metadata, context_without_attribution(context)


# --- per-call arguments ---------------------------------------------------------------


def coerce_call_customer_id(value: object) -> str | None:
    """The per-call ``customer_id=`` argument, trimmed; None when it is unusable.

    Never raises: a bad value (not a str, empty, too long, a control character) gives None,
    so the call is unattributed, with one WARNING per reason per process (the value is not
    logged).
    ``None`` gives None silently: the caller decides whether it means "not given".
    """
    if value is None:
        return None
    checked = _check_customer_id(value)
    if isinstance(checked, _Problem):
        _warn_once(
            "call." + checked.reason,
            "customer_id= argument ignored: it %s; the call is billed as unattributed",
            checked.detail,
        )
        return None
    return checked


def coerce_call_metadata(value: object) -> dict[str, str]:
    """The per-call ``cmdrdata_metadata=`` argument as ``{key: str}``; never raises.

    ``None`` gives ``{}``. Anything but a mapping gives ``{}``, and a bad entry (key or value
    as :func:`customer_context` would reject it) is left out, with one WARNING per reason
    per process.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        _warn_once(
            "call_metadata.type",
            "cmdrdata_metadata= argument ignored: it must be a dict, not %s",
            type(value).__name__,
        )
        return {}
    result: dict[str, str] = {}
    for key, item in value.items():
        checked = _check_metadata_entry(key, item)
        if isinstance(checked, _Problem):
            _warn_once(
                "call_metadata." + checked.reason,
                "cmdrdata_metadata= entry ignored: its %s",
                checked.detail,
            )
            continue
        result[checked[0]] = checked[1]
    return result
