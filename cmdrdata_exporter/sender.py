"""Background delivery from the spool to cmdrdata.

One ``Delivery`` per exporter owns the HTTP transport (a pool of keep-alive connections), a
few daemon worker threads (bounded concurrency) and the shared pause state: a 429 or an outage
pauses the whole sender, not just one event, so a struggling server is not hammered; a 401/403
pauses until the key works again, and never turns billing off. ``Sender`` is the daemon thread
that runs delivery rounds; ``Delivery.drain`` runs them on the caller's thread (flush,
shutdown), one round at a time.
All of it runs with OpenTelemetry instrumentation suppressed, so our requests are never traced
and never carry ``traceparent``/``baggage``.
"""

from __future__ import annotations

import logging
import math
import platform
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx
from opentelemetry import context as otel_context

from cmdrdata_exporter.config import Settings, display_url
from cmdrdata_exporter.diagnostics import Drops
from cmdrdata_exporter.spool import Claimed, Outcome, Spool
from cmdrdata_exporter.transport import open_transport, send, timeout_extension

logger = logging.getLogger("cmdrdata_exporter.sender")

try:
    from opentelemetry_instrumentation_cmdrdata.version import __version__
except Exception:  # pragma: no cover
    __version__ = "0"

USER_AGENT = (
    f"opentelemetry-instrumentation-cmdrdata/{__version__} (python {platform.python_version()})"
)
MAX_RETRY_AFTER = 3600.0
MAX_BLOCKED_PAUSE = 60.0  # SPEC section 5: a paused exporter tries again at least this often
BLOCKING = ("auth", "endpoint")  # answers that pause delivery until the settings work


def _suppression_context() -> otel_context.Context:
    ctx = otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True)
    try:
        from opentelemetry.instrumentation.utils import _SUPPRESS_HTTP_INSTRUMENTATION_KEY

        ctx = otel_context.set_value(_SUPPRESS_HTTP_INSTRUMENTATION_KEY, True, ctx)
    except Exception:
        pass
    return ctx


@contextmanager
def suppressed():
    """Run a block with every OpenTelemetry instrumentation switched off."""
    token = otel_context.attach(_suppression_context())
    try:
        yield
    finally:
        otel_context.detach(token)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def classify(status: int) -> str:
    """What a reply status says (SPEC section 5).

    ``delivered``: any 2xx. ``retry``: 408, 429, 5xx (the server is struggling). ``auth``:
    401/403, the key is refused. ``endpoint``: 404, 405, 410 or any 3xx, the URL is not the
    events API (a typo, an old path, a proxy's redirect). Both pause delivery and keep the
    events. ``rejected``: any other 4xx, a verdict on that one event.
    """
    if 200 <= status < 300:
        return "delivered"
    if status in (401, 403):
        return "auth"
    if status in (404, 405, 410) or 300 <= status < 400:
        return "endpoint"
    if 400 <= status < 500 and status not in (408, 429):
        return "rejected"
    return "retry"


class Recorder(Protocol):
    """Where delivery reports what it settled (``metrics.ExporterMetrics``)."""

    def recording(self) -> bool: ...
    def delivered(self, bodies: Sequence[str], now: float) -> None: ...
    def rejected(self, statuses: Iterable[int]) -> None: ...


def request_headers(settings: Settings) -> dict[str, str]:
    """The headers of every request to cmdrdata (events and ``check``'s probe)."""
    return {
        "Authorization": f"Bearer {settings.api_key}",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


@dataclass(frozen=True)
class Attempt:
    """The result of one POST, classified."""

    kind: str  # a classify() result, or released (not attempted)
    status: int | None = None
    detail: str = ""
    retry_after: float | None = None
    location: str | None = None  # where a 3xx points


@dataclass
class Pause:
    """The sender's shared pause: until when, and why.

    ``blocked`` is ``auth`` or ``endpoint`` while the key or the endpoint is refused: delivery
    is then paused until they work, whatever the timer says. An outage only backs off.
    """

    until: float = 0.0
    reason: str | None = None
    blocked: str | None = None
    failures: int = 0  # consecutive rounds with a retryable failure
    refusals: int = 0  # consecutive rounds refused for the key or the endpoint


def settle_batch(
    batch: Sequence[Claimed], attempts: Sequence[Attempt], settings: Settings, now: float
) -> tuple[Outcome, float]:
    """The spool changes one round's answers call for, and the Retry-After pause they ask."""
    outcome = Outcome()
    pause = 0.0
    for claimed, attempt in zip(batch, attempts, strict=True):
        if attempt.kind == "delivered":
            outcome.delivered.append(claimed.event_id)
        elif attempt.kind == "rejected":
            outcome.rejected.append((claimed, attempt.status or 0, attempt.detail))
        elif attempt.kind == "retry":
            backoff = min(settings.backoff_cap, settings.backoff_base * 2**claimed.attempts)
            wait = attempt.retry_after
            if wait is None:
                wait = random.uniform(0, backoff)
            outcome.retry.append((claimed.event_id, now + wait))
            outcome.last_error = attempt.detail
            if attempt.retry_after is not None and attempt.status in (429, 503):
                pause = max(pause, attempt.retry_after)
        else:  # refused or released: not the event's fault, give the lease back
            outcome.released.append(claimed.event_id)
            if attempt.kind in BLOCKING:
                outcome.last_error = attempt.detail
    return outcome, pause


def _record(metrics: Recorder, batch: Sequence[Claimed], outcome: Outcome) -> None:
    if outcome.delivered:
        delivered = set(outcome.delivered)
        metrics.delivered([c.body for c in batch if c.event_id in delivered], time.time())
    if outcome.rejected:
        metrics.rejected([status for _, status, _ in outcome.rejected])


def _refusal_reason(attempt: Attempt, endpoint: str) -> str:
    if attempt.kind == "auth":
        return "API key refused"
    return f"wrong endpoint: {display_url(endpoint)} answered HTTP {attempt.status}"


class _Workers:
    """A few daemon threads; unlike ThreadPoolExecutor they never hold up interpreter exit."""

    def __init__(self, size: int):
        self._size = size
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._latency = 0.0  # running estimate of one request's duration, seconds

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._work, name="cmdrdata-exporter-http", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        with suppressed():
            while (job := self._jobs.get()) is not None:
                job()

    def map(
        self, fn: Callable[[Claimed], Attempt], items: Sequence[Claimed], deadline: float
    ) -> list[Attempt | None]:
        """Run ``fn`` over ``items``; None for those unfinished at ``deadline``.

        The caller must not wait past its deadline for workers busy with someone else's
        requests (the sender thread's, hanging on a slow server).
        """
        results: list[Attempt | None] = [None] * len(items)
        start = 0
        # While requests answer within a few milliseconds (a nearby server), making them one
        # after another on this thread is faster than handing each to a worker: two thread
        # switches per request cost more than the request. Slow answers (a distant server,
        # latency-bound) go to the workers, several in flight.
        while start < len(items) and (self._size <= 1 or self._latency < _FAST_REQUEST_SECONDS):
            results[start] = self._timed(fn, items[start])
            start += 1
        if start == len(items):
            return results
        self._start()
        done = threading.Semaphore(0)

        def run(i: int, item: Claimed) -> None:
            try:
                results[i] = self._timed(fn, item)
            finally:
                done.release()

        for i in range(start, len(items)):
            self._jobs.put(lambda i=i, item=items[i]: run(i, item))
        for _ in range(start, len(items)):
            if not done.acquire(timeout=max(0.0, min(deadline - time.monotonic(), 3600))):
                break
        return results

    def _timed(self, fn: Callable[[Claimed], Attempt], item: Claimed) -> Attempt:
        """One request, its duration folded into the running latency estimate."""
        began = time.monotonic()
        try:
            return fn(item)
        except Exception as exc:  # never lose the worker or the event
            return Attempt("retry", detail=f"internal error {type(exc).__name__}")
        finally:
            self._latency = 0.8 * self._latency + 0.2 * (time.monotonic() - began)

    def stop(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        self._threads = []


_MIN_REQUEST_SECONDS = 1.0
_MAX_LOCK_WAIT = 3600.0
_FAST_REQUEST_SECONDS = 0.004


class Delivery:
    """Claims events from the spool, POSTs them, and records each outcome."""

    def __init__(
        self, settings: Settings, spool: Spool, drops: Drops, metrics: Recorder | None = None
    ):
        self.settings = settings
        self.spool = spool
        self.drops = drops
        self.metrics = metrics
        self.owner = f"{platform.node()}:{uuid.uuid4().hex[:12]}"
        self.lease = settings.timeout * (math.ceil(settings.batch_size / settings.concurrency) + 2)
        self.pause = Pause()
        self._lock = threading.Lock()
        # One round at a time: a flush on the caller's thread and the sender thread delivering
        # side by side only fight over the GIL (the workers already give the concurrency).
        self._round_lock = threading.Lock()
        self._workers = _Workers(settings.concurrency)
        self._transport: httpx.HTTPTransport | None = None
        self._url: httpx.URL | None = None
        self._headers = request_headers(settings)
        self._timeout = timeout_extension(settings.timeout)

    @property
    def transport(self) -> httpx.HTTPTransport:
        if self._transport is None:
            self._url = httpx.URL(self.settings.endpoint)
            self._transport = open_transport(self.settings.endpoint, self.settings.concurrency)
        return self._transport

    # -- one request ---------------------------------------------------------------------

    def _post(self, claimed: Claimed, abort: threading.Event, deadline: float) -> Attempt:
        remaining = deadline - time.monotonic()
        # A request cut short by a flush deadline may still reach the server, and its retry
        # would then arrive twice: start one only with time enough to finish normally.
        if abort.is_set() or remaining < min(_MIN_REQUEST_SECONDS, self.settings.timeout):
            return Attempt("released")
        transport = self.transport
        request = httpx.Request(
            "POST",
            self._url,  # type: ignore[arg-type]  # set with the transport
            content=claimed.body.encode(),
            headers={**self._headers, "Idempotency-Key": claimed.event_id},
            # The usual timeout unless the deadline is nearer.
            extensions=self._timeout
            if remaining >= self.settings.timeout
            else timeout_extension(remaining),
        )
        try:
            reply = send(transport, request)
        except httpx.HTTPError as exc:
            abort.set()
            return Attempt("retry", detail=f"{type(exc).__name__} sending to cmdrdata")
        status = reply.status_code
        kind = classify(status)
        if kind == "delivered":
            return Attempt(kind, status)
        text = reply.text[:2048]
        if kind == "rejected":
            return Attempt(kind, status, text)
        abort.set()  # the server is unhappy: leave the rest of the batch for later
        if kind == "endpoint":
            location = reply.headers.get("Location")
            where = display_url(location) if location else None
            return Attempt(kind, status, f"HTTP {status} {text[:200]}", location=where)
        wait = parse_retry_after(reply.headers.get("Retry-After"), time.time())
        return Attempt(kind, status, f"HTTP {status} {text[:200]}", wait)

    # -- one round -----------------------------------------------------------------------

    def run_round(
        self,
        deadline: float = math.inf,
        ignore_timers: bool = False,
        stopped: threading.Event | None = None,
        ignore_pause: bool = False,
    ) -> tuple[int, int]:
        """Claim one batch and deliver it; returns (claimed, settled for good).

        ``stopped``: the sender thread's stop flag, checked again once the round lock is ours
        (a shutdown's final drain may have held it). ``ignore_timers`` implies
        ``ignore_pause``.
        """
        if self.pause.until > time.time() and not (ignore_timers or ignore_pause):
            return 0, 0
        wait = min(deadline - time.monotonic(), _MAX_LOCK_WAIT)
        if wait < 0 or not self._round_lock.acquire(timeout=wait):
            return 0, 0
        try:
            if stopped is not None and stopped.is_set():
                return 0, 0
            return self._round(deadline, ignore_timers)
        finally:
            self._round_lock.release()

    def _round(self, deadline: float, ignore_timers: bool) -> tuple[int, int]:
        batch = self.spool.claim(self.owner, self.settings.batch_size, self.lease, ignore_timers)
        if not batch:
            return 0, 0
        # No request may outlive our lease, or another process could send the same event.
        deadline = min(deadline, time.monotonic() + self.lease * 0.8)
        abort = threading.Event()
        results = self._workers.map(lambda c: self._post(c, abort, deadline), batch, deadline)
        # Unfinished requests keep their lease: still in flight, they must not be re-claimed.
        done = [(c, a) for c, a in zip(batch, results, strict=True) if a is not None]
        outcome = self._apply([c for c, _ in done], [a for _, a in done])
        self.spool.settle(self.owner, outcome)
        metrics = self.metrics
        if metrics is not None and (outcome.delivered or outcome.rejected) and metrics.recording():
            _record(metrics, batch, outcome)
        return len(batch), len(outcome.delivered) + len(outcome.rejected)

    def _apply(self, batch: Sequence[Claimed], attempts: Sequence[Attempt]) -> Outcome:
        """Turn attempts into spool changes and into the sender's pause state."""
        outcome, retry_after = settle_batch(batch, attempts, self.settings, time.time())
        for _, status, _ in outcome.rejected:
            self.drops.count(
                f"rejected_{status}",
                f"cmdrdata rejected an event with HTTP {status}; it is kept as rejected "
                "(see `cmdrdata-exporter status`, put back by `cmdrdata-exporter requeue`)",
            )
        with self._lock:
            self._after_round(attempts, outcome, retry_after)
        outcome.paused = self.pause.blocked
        return outcome

    def _after_round(
        self, attempts: Sequence[Attempt], outcome: Outcome, retry_after: float
    ) -> None:
        """The pause state machine: refused settings pause, outages back off, success resets."""
        s, pause = self.settings, self.pause
        kinds = {a.kind for a in attempts}
        refused = next((a for a in attempts if a.kind in BLOCKING), None)
        if refused is not None:
            pause.refusals += 1
            step = s.auth_retry * 2 ** min(pause.refusals - 1, 16)
            if pause.blocked != refused.kind:
                self._log_refusal(refused)
            pause.blocked = refused.kind
            self._pause(min(step, MAX_BLOCKED_PAUSE), _refusal_reason(refused, s.endpoint))
        elif "retry" in kinds and (outcome.delivered or outcome.rejected):
            # Some requests failed, others got through: the server is up. The failed
            # events back off on their own timers; the sender only honours Retry-After.
            pause.failures = 0
            if retry_after:
                self._pause(retry_after, "cmdrdata asked to retry later")
        elif "retry" in kinds:
            pause.failures += 1
            step = min(s.backoff_cap, s.backoff_base * 2 ** (pause.failures - 1))
            wait = max(retry_after, random.uniform(step / 2, step))
            self._pause(wait, "cmdrdata unavailable")
            if pause.failures == 1:
                logger.warning(
                    "cannot deliver to cmdrdata (%s); events are kept and retried with backoff",
                    outcome.last_error,
                )
        elif outcome.delivered or outcome.rejected:
            if pause.failures or pause.refusals:
                logger.info("cmdrdata delivery resumed")
            self.pause = Pause()

    def _log_refusal(self, attempt: Attempt) -> None:
        if attempt.kind == "auth":
            logger.error(
                "cmdrdata refused the API key (HTTP %s); delivery is paused and events are "
                "kept; retrying every %g s or less until the key is accepted",
                attempt.status,
                MAX_BLOCKED_PAUSE,
            )
        else:
            logger.error(
                "the cmdrdata endpoint %s answered HTTP %s%s: it is not the events API (check "
                "CMDRDATA_ENDPOINT); delivery is paused and events are kept; retrying every "
                "%g s or less, and at once on flush or a restart with the fixed endpoint",
                display_url(self.settings.endpoint),
                attempt.status,
                f" (redirecting to {attempt.location})" if attempt.location else "",
                MAX_BLOCKED_PAUSE,
            )

    def _pause(self, seconds: float, reason: str) -> None:
        self.pause.until = max(self.pause.until, time.time() + seconds)
        self.pause.reason = reason

    @property
    def paused(self) -> str | None:
        """Why delivery waits now (a refused key or endpoint, or an outage's backoff)."""
        pause = self.pause
        if pause.blocked or pause.until > time.time():
            return pause.reason
        return None

    # -- loops -----------------------------------------------------------------------------

    def drain(self, deadline: float, ignore_timers: bool = False) -> bool:
        """Deliver on this thread until nothing is claimable, a pause, or the deadline.

        Returns True when the spool holds nothing more to deliver.
        """
        with suppressed():
            first = True  # a flush tries once even while paused: the settings may work now
            while time.monotonic() < deadline:
                claimed, settled = self.run_round(deadline, ignore_timers, ignore_pause=first)
                first = False
                if claimed == 0 and self.spool.in_flight(self.owner):
                    time.sleep(0.01)  # the sender thread is finishing a batch: wait for it
                    continue
                if claimed == 0 or (settled == 0 and ignore_timers):
                    break
            return self.spool.pending() == 0

    def close(self) -> None:
        self._workers.stop()
        if self._transport is not None:
            self._transport.close()
            self._transport = None


def probe(settings: Settings) -> tuple[str, int | None, str]:
    """POST ``{}`` with the key: a request that records nothing (``cmdrdata-exporter check``).

    cmdrdata answers 400 "Missing required field" once it has accepted the key. Returns
    ``(classify(status), status, reply)``, or ``("unreachable", None, error)``.
    """
    with suppressed():
        transport = open_transport(settings.endpoint, 1)
        request = httpx.Request(
            "POST",
            settings.endpoint,
            content=b"{}",
            headers=request_headers(settings),
            extensions=timeout_extension(settings.timeout),
        )
        try:
            reply = send(transport, request)
        except httpx.HTTPError as exc:
            return "unreachable", None, type(exc).__name__
        finally:
            transport.close()
    return classify(reply.status_code), reply.status_code, reply.text[:200]


class Sender:
    """The daemon thread that keeps delivering while the exporter lives."""

    def __init__(self, delivery: Delivery, poll_interval: float):
        self.delivery = delivery
        self._poll = poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cmdrdata-exporter", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        with suppressed():
            while not self._stop.is_set():
                try:
                    self._wake.clear()
                    paused_for = self.delivery.pause.until - time.time()
                    if paused_for > 0:
                        self._stop.wait(min(paused_for, self._poll * 5))
                        continue
                    claimed, _ = self.delivery.run_round(stopped=self._stop)
                    if claimed == 0:
                        self._wake.wait(self._poll)
                except Exception:  # keep the thread alive whatever happens
                    logger.exception("cmdrdata sender error; retrying")
                    self._stop.wait(self._poll)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> bool:
        self._thread.join(max(timeout, 0))
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
