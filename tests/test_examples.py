"""Every file in ``examples/`` runs, as a user would run it, against the local stand-ins.

Each example reads its endpoints and keys from the environment (the SDKs read
``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` themselves), so the tests only set variables.
``examples/demo.py`` is run by ``.ci/run`` itself.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from opentelemetry_instrumentation_cmdrdata.semconv import SCOPE_NAME
from tests.collector import rotel as collector_fixtures
from tests.collector.apps import ROOT, clean_env, run_instrumented, spool_status
from tests.collector.otlp_receiver import OtlpReceiver
from tests.collector.rotel import free_port
from tests.servers.anthropic_server import AnthropicUsage
from tests.servers.cmdrdata_server import TEST_API_KEY, CmdrDataServer
from tests.servers.openai_server import OpenAIUsage

otlp_receiver = collector_fixtures.otlp_receiver  # the fixture

EXAMPLES = ROOT / "examples"


def example_env(openai_server, cmdrdata: CmdrDataServer, spool: Path, **extra: str):
    return clean_env(
        OPENAI_BASE_URL=openai_server.url + "/v1",
        OPENAI_API_KEY="sk-test",
        CMDRDATA_API_KEY=TEST_API_KEY,
        CMDRDATA_ENDPOINT=cmdrdata.url,
        CMDRDATA_SPOOL_DIR=str(spool),
        **extra,
    )


def run_example(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert completed.returncode == 0, f"{name} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed


def billed(cmdrdata: CmdrDataServer) -> dict[str, dict]:
    return {event["customer_id"]: event for event in cmdrdata.events}


def test_manual_setup(openai_server, cmdrdata_server, tmp_path):
    openai_server.configure(usage=OpenAIUsage(prompt_tokens=40, completion_tokens=17))

    env = example_env(openai_server, cmdrdata_server, tmp_path)

    completed = run_example("manual_setup.py", env)

    assert "acme-corp: 57 tokens billed" in completed.stdout
    assert cmdrdata_server.wait_for(2, timeout=20), completed.stderr + spool_status(env)
    events = billed(cmdrdata_server)
    assert sorted(events) == ["acme-corp", "globex"]
    assert events["acme-corp"]["metadata"]["plan"] == "pro"
    assert events["globex"]["metadata"]["plan"] == "free"
    assert events["globex"]["input_tokens"] == 40
    assert events["globex"]["metadata"]["service_name"] == "manual-setup-example"


def test_auto_instrument_app(openai_server, anthropic_server, cmdrdata_server, tmp_path):
    """The docstring's "no collector" command, with the launcher's flags rather than variables
    (both are equivalent). The OTLP side under ``opentelemetry-instrument`` is covered by
    ``test_auto_instrumentation.py`` and ``test_otlp_collector.py``."""
    anthropic_server.configure(usage=AnthropicUsage(input_tokens=30, output_tokens=12))
    env = example_env(
        openai_server,
        cmdrdata_server,
        tmp_path,
        ANTHROPIC_BASE_URL=anthropic_server.url,
        ANTHROPIC_API_KEY="sk-ant-test",
    )
    flags = (
        "--service_name", "auto-example",
        "--traces_exporter", "cmdrdata",
        "--metrics_exporter", "none",
        "--logs_exporter", "none",
    )  # fmt: skip

    completed = run_instrumented(EXAMPLES / "auto_instrument_app.py", env, flags=flags)

    assert completed.returncode == 0, completed.stderr
    assert "initech (anthropic): 42 tokens" in completed.stdout
    assert cmdrdata_server.wait_for(3, timeout=20), completed.stderr + spool_status(env)
    assert sorted(billed(cmdrdata_server)) == ["acme-corp", "globex", "initech"]
    assert billed(cmdrdata_server)["initech"]["provider"] == "anthropic"
    assert billed(cmdrdata_server)["initech"]["input_tokens"] == 30
    assert billed(cmdrdata_server)["acme-corp"]["metadata"]["service_name"] == "auto-example"


def test_otlp_alongside(openai_server, cmdrdata_server, otlp_receiver: OtlpReceiver, tmp_path):
    env = example_env(
        openai_server, cmdrdata_server, tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url
    )

    completed = run_example("otlp_alongside.py", env)

    # The collector gets the app's own span and the GenAI span nested in it...
    spans = otlp_receiver.wait_for_spans(count=2)
    by_name = {span.name: span for span in spans}
    assert sorted(by_name) == ["chat gpt-4o-mini", "handle-ticket"]
    llm_span, parent = by_name["chat gpt-4o-mini"], by_name["handle-ticket"]
    assert llm_span.scope == SCOPE_NAME
    assert llm_span.parent_span_id == parent.span_id
    assert llm_span.attributes["cmdrdata.customer_id"] == "acme-corp"
    # ...and cmdrdata bills that same GenAI span, and only it.
    assert cmdrdata_server.wait_for(1, timeout=20), completed.stderr + spool_status(env)
    time.sleep(0.2)
    assert len(cmdrdata_server.events) == 1
    event = cmdrdata_server.events[0]
    assert event["customer_id"] == "acme-corp"
    assert (event["metadata"]["trace_id"], event["metadata"]["span_id"]) == (
        llm_span.trace_id,
        llm_span.span_id,
    )


def _post(url: str, token: str | None, text: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _wait_until_serving(process: subprocess.Popen[str], url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"web_service.py exited early:\n{process.communicate()[1]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("web_service.py did not start serving in time")


@pytest.fixture
def web_service(openai_server, cmdrdata_server, tmp_path):
    """examples/web_service.py under uvicorn on a free port; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "web_service.py"), "--port", str(port)],
        env=example_env(openai_server, cmdrdata_server, tmp_path),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(process, base + "/healthz")
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_web_service_bills_each_request_to_the_callers_organisation(web_service, cmdrdata_server):
    base, process = web_service
    with ThreadPoolExecutor(4) as pool:
        calls = [
            pool.submit(_post, base + "/summarize", token, text)
            for token, text in [
                ("alice-token", "ticket one"),
                ("bob-token", "ticket two"),
                ("alice-token", "ticket three"),
            ]
        ]
        answers = [call.result() for call in calls]
    assert [status for status, _ in answers] == [200, 200, 200]
    assert [body["billed_to"] for _, body in answers] == ["acme-corp", "globex", "acme-corp"]
    status, _ = _post(base + "/summarize", None, "no token")
    assert status == 401  # refused before any LLM call: nothing to bill

    # Stop it the way a process manager does; the lifespan flushes the exporter.
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert cmdrdata_server.wait_for(3, timeout=20), process.stderr.read()
    customers = sorted(event["customer_id"] for event in cmdrdata_server.events)
    assert customers == ["acme-corp", "acme-corp", "globex"]
    for event in cmdrdata_server.events:
        assert event["metadata"]["plan"] == (
            "pro" if event["customer_id"] == "acme-corp" else "free"
        )
        assert event["metadata"]["feature"] == "summarize"
        assert event["metadata"]["service_name"] == "summarizer-api"


def test_local_servers_prints_working_endpoints(tmp_path):
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "local_servers.py"), "--quiet"],
        env=clean_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        exports = {}
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("# serving"):
                break
            name, _, value = line.removeprefix("export ").strip().partition("=")
            exports[name] = value
        assert {"OPENAI_BASE_URL", "CMDRDATA_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} <= set(
            exports
        ), process.stderr.read() if process.poll() is not None else exports
        event = {"customer_id": "c", "model": "m", "provider": "openai"}
        request = urllib.request.Request(
            exports["CMDRDATA_ENDPOINT"],
            data=json.dumps(event).encode(),
            headers={
                "Authorization": f"Bearer {exports['CMDRDATA_API_KEY']}",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
