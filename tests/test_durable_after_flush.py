"""Issue #14, points 1 and 7: what a process has flushed survives ``kill -9``, and what it cannot
keep is counted at exit (SPEC §7).

- Once the call returns under a ``SimpleSpanProcessor`` (its span was exported inside it), or once
  ``provider.force_flush()`` returns, every finished call is in the spool, whichever path billed
  it (the span pipeline, or the instrumentor's direct hand-over of SPEC §8). The child process
  kills itself with SIGKILL at that moment, so no background thread gets a chance to help; then
  ``cmdrdata-exporter flush`` on the same spool dir must deliver each call exactly once.
- With ``CMDRDATA_SPOOL=memory`` (or a spool that cannot be written) and cmdrdata answering 503,
  the events left at exit are lost: one ERROR line says how many.
"""

from __future__ import annotations

import signal
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from tests.servers.cmdrdata_server import CmdrDataServer
from tests.span_maker import child_env, run_python

CALLS = 5

# Real instrumented OpenAI calls (a fake OpenAI in the same process), one customer per call so
# the test can tell which calls arrived. The child has no API key: its events stay in the spool
# for the next process, and whatever is not in the spool when it dies is lost.
KILLED_AFTER_FLUSH = textwrap.dedent(
    """
    import os, signal, sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
    from cmdrdata_exporter import CmdrDataSpanExporter
    from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor
    from tests.servers.openai_server import OpenAIFakeServer
    from tests.span_maker import chat_as

    processor, sampler, flush, setup, calls = sys.argv[1:5] + [int(sys.argv[5])]
    if setup == "global-late":  # instrument() before the app sets its global provider
        CmdrDataInstrumentor().instrument()
    provider = TracerProvider(sampler=ALWAYS_OFF if sampler == "off" else ALWAYS_ON)
    exporter = CmdrDataSpanExporter()
    wrap = BatchSpanProcessor if processor == "batch" else SimpleSpanProcessor
    provider.add_span_processor(wrap(exporter))
    if setup == "global-late":
        trace.set_tracer_provider(provider)
    else:
        CmdrDataInstrumentor().instrument(tracer_provider=provider)
    with OpenAIFakeServer() as openai_server:
        chat_as(openai_server.client(), [f"cust-{i}" for i in range(calls)])
        if flush == "flush":
            provider.force_flush()
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("processor", "sampler", "flush", "setup"),
    [
        ("simple", "on", "no-flush", "given"),  # the call's return is the export's return
        ("batch", "on", "flush", "given"),
        ("batch", "off", "flush", "given"),
        ("simple", "off", "flush", "given"),
        ("batch", "off", "flush", "global-late"),
    ],
)
def test_kill_9_right_after_flush_loses_nothing(
    cmdrdata_server: CmdrDataServer,
    tmp_path: Path,
    processor: str,
    sampler: str,
    flush: str,
    setup: str,
) -> None:
    spool = tmp_path / "spool"
    env = child_env(cmdrdata_server.url, spool)
    keyless = {k: v for k, v in env.items() if k != "CMDRDATA_API_KEY"}
    args = [processor, sampler, flush, setup, str(CALLS)]
    child = run_python(["-c", KILLED_AFTER_FLUSH, *args], keyless)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert cmdrdata_server.count == 0  # the child could not deliver: all rests on its spool

    flushed = run_python(["-m", "cmdrdata_exporter", "flush"], env)
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    received = cmdrdata_server.event_ids()
    customers = Counter(event["customer_id"] for event in cmdrdata_server.events)
    assert customers == Counter(f"cust-{i}" for i in range(CALLS))
    assert len(set(received)) == len(received) == CALLS
    assert cmdrdata_server.duplicates == 0


# Exits normally while cmdrdata answers 503: atexit shuts the exporter down, which cannot
# deliver within its (short) deadline and has nowhere durable to keep the events.
EXITS_WITH_UNDELIVERED = textwrap.dedent(
    """
    import logging, sys
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from cmdrdata_exporter import CmdrDataSpanExporter
    from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor
    from tests.servers.openai_server import OpenAIFakeServer
    from tests.span_maker import chat_as

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    provider = TracerProvider()
    exporter = CmdrDataSpanExporter(shutdown_timeout=0.5, _backoff_base=0.05)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    CmdrDataInstrumentor().instrument(tracer_provider=provider)
    with OpenAIFakeServer() as openai_server:
        chat_as(openai_server.client(), [f"cust-{i}" for i in range(int(sys.argv[1]))])
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("spool", ["memory", "unwritable"])
def test_events_lost_at_exit_are_counted_in_one_error_line(
    cmdrdata_server: CmdrDataServer, tmp_path: Path, spool: str
) -> None:
    calls = 7
    cmdrdata_server.set_mode(fail_next=1_000_000, fail_status=503, retry_after="0")
    env = child_env(cmdrdata_server.url, tmp_path / "spool")
    if spool == "memory":
        env["CMDRDATA_SPOOL"] = "memory"
    else:  # a regular file where the spool dir should be: SQLite cannot open it
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("")
        env["CMDRDATA_SPOOL_DIR"] = str(blocker)
    child = run_python(["-c", EXITS_WITH_UNDELIVERED, str(calls)], env)
    assert child.returncode == 0, child.stderr
    assert cmdrdata_server.count == 0
    assert len(cmdrdata_server.requests) > 0  # it did try, and was refused
    errors = [line for line in child.stderr.splitlines() if line.startswith("ERROR")]
    lost = [line for line in errors if "not delivered" in line]
    assert len(lost) == 1, child.stderr
    assert f" {calls} " in lost[0], lost[0]
    # Memory by choice: the loss is the only error. An unwritable spool had its own at start.
    assert len(errors) == (1 if spool == "memory" else 2), child.stderr
