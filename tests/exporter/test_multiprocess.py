"""Several processes, one spool dir: nothing lost across exits and crashes, nothing sent twice."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.span_maker import child_env as make_child_env

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from cmdrdata_exporter import CmdrDataSpanExporter, span_to_event

    n, how = int(sys.argv[1]), sys.argv[2]
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("opentelemetry_instrumentation_cmdrdata")
    for _ in range(n):
        with tracer.start_as_current_span("chat", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 3}):
            pass
    exporter = CmdrDataSpanExporter(_poll_interval=0.05, _backoff_base=0.01, _backoff_cap=0.2,
                                    timeout=float(os.environ.get("CHILD_TIMEOUT", "0.5")),
                                    _batch_size=4)  # lease = 3 x timeout
    spans = memory.get_finished_spans()
    exporter.export(spans)
    print(json.dumps([span_to_event(s, exporter.settings)["metadata"]["event_id"] for s in spans]))
    sys.stdout.flush()
    if how == "crash":
        os._exit(0)  # no shutdown, no atexit: as if killed right after export() returned
    if how == "deliver":  # until the shared spool is empty, whoever delivers it
        deadline = time.monotonic() + 20
        # a long flush deadline: a request cut short by it would be retried, and counted twice
        # here although a deduplicating server (Idempotency-Key) counts it once
        while not exporter.force_flush(20000) and time.monotonic() < deadline:
            time.sleep(0.05)
    exporter.shutdown(timeout_millis=int(sys.argv[3]) if len(sys.argv) > 3 else 10000)
    """
)


def _child(env, *args, wait=True):
    cmd = [sys.executable, "-c", CHILD, *map(str, args)]
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if not wait:
        return proc
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out.splitlines()[-1])


@pytest.fixture
def child_env(spool_dir, cmdrdata_server):
    return make_child_env(cmdrdata_server.url, spool_dir)


@pytest.mark.slow
def test_events_of_a_process_that_died_are_delivered_by_the_next(child_env, cmdrdata_server):
    cmdrdata_server.stop()  # cmdrdata is down while the first processes run
    exited = _child(child_env, 30, "exit", 200)
    crashed = _child(child_env, 20, "crash")
    assert cmdrdata_server.events == []
    cmdrdata_server.start()
    _child(child_env, 0, "deliver")
    assert sorted(cmdrdata_server.event_ids()) == sorted(exited + crashed)
    assert cmdrdata_server.duplicates == 0


@pytest.mark.slow
def test_four_processes_sharing_a_spool_deliver_each_event_once(child_env, cmdrdata_server):
    # A generous timeout: on a busy 2-core box the in-process server can be slower than 0.5 s,
    # and a timed-out request is (rightly) retried, which this test would count as a duplicate.
    child_env["CHILD_TIMEOUT"] = "5"
    procs = [_child(child_env, 150, "deliver", wait=False) for _ in range(4)]
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        ids += json.loads(out.splitlines()[-1])
    assert len(set(ids)) == 600
    assert cmdrdata_server.wait_for(600, 15)
    received = cmdrdata_server.event_ids()
    assert sorted(received) == sorted(ids)  # each once: no process sent another's event again
    import collections

    by = collections.defaultdict(list)
    for r in cmdrdata_server.requests:
        by[r.headers.get("Idempotency-Key")].append((r.at, r.status, r.headers.get("User-Agent")))
    assert [v for v in by.values() if len(v) > 1] == []
    assert cmdrdata_server.duplicates == 0
    assert [r for r in cmdrdata_server.requests if r.status not in (200, 201)] == []


def test_fork_child_gets_its_own_sender(make_exporter, make_spans, cmdrdata_server):
    import os
    import time

    exporter = make_exporter()
    exporter.export(make_spans(3))
    assert cmdrdata_server.wait_for(3, 5)
    pid = os.fork()
    if pid == 0:  # child: export and deliver through a fresh sender, then leave at once
        code = 1
        try:
            exporter.export(make_spans(4))
            deadline = time.monotonic() + 20  # generous: a busy CI machine
            while exporter.status()["queued"] and time.monotonic() < deadline:
                exporter.force_flush(500)  # parent and child share the spool file
            code = 0 if exporter.status()["queued"] == 0 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cmdrdata_server.wait_for(7, 20)
    assert cmdrdata_server.duplicates == 0
