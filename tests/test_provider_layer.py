"""The provider layer: every wrapping strategy is the generic layer's, providers only name it.

Adding an SDK is one module in ``providers/`` that declares targets with a ``Strategy`` and
reads requests, responses and chunks; these tests keep it that way.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from opentelemetry_instrumentation_cmdrdata import logs
from opentelemetry_instrumentation_cmdrdata.patching import make_wrapper, unwrap_target, wrap_target
from opentelemetry_instrumentation_cmdrdata.providers.anthropic import AnthropicHooks
from opentelemetry_instrumentation_cmdrdata.providers.google_genai import GoogleGenAIHooks
from opentelemetry_instrumentation_cmdrdata.providers.openai import OpenAIHooks
from opentelemetry_instrumentation_cmdrdata.targets import MethodTarget, RequestInfo, Strategy
from opentelemetry_instrumentation_cmdrdata.telemetry import build_telemetry

PACKAGE = Path(logs.__file__).parent
HOOKS = (OpenAIHooks, AnthropicHooks, GoogleGenAIHooks)


def _relative_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = "." * node.level + (node.module or "")
            if node.module:
                found.add(base)
            else:
                found.update(base + alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("hooks_class", HOOKS, ids=lambda cls: cls.name)
def test_every_target_names_a_strategy_the_generic_layer_builds(hooks_class):
    telemetry = build_telemetry()
    hooks = hooks_class(telemetry)
    targets = hooks.targets()
    assert targets
    for target in targets:
        assert isinstance(target.strategy, Strategy)
        assert callable(make_wrapper(hooks, target, telemetry))


def test_every_strategy_has_a_wrapper():
    telemetry = build_telemetry()
    hooks = OpenAIHooks(telemetry)
    for strategy in Strategy:
        for is_async in (False, True):
            target = MethodTarget("m", "C.f", "chat", is_async, "chat", strategy)
            assert callable(make_wrapper(hooks, target, telemetry))


@pytest.mark.parametrize("module", ["openai", "anthropic", "google_genai"])
def test_providers_import_no_generic_layer(module):
    allowed = {"..semconv", "._common", ".base", "..invocation", "..telemetry", "..pricing"}
    assert _relative_imports(PACKAGE / "providers" / f"{module}.py") <= allowed


@pytest.mark.parametrize("module", ["targets.py", "logs.py"])
def test_leaf_modules_import_nothing_of_ours(module):
    assert _relative_imports(PACKAGE / module) == set()


def test_invocation_does_not_import_providers():
    assert not any("providers" in name for name in _relative_imports(PACKAGE / "invocation.py"))


def test_log_once_logs_each_cause_once_then_quietly(caplog):
    once = logs.LogOnce(logging.getLogger("tests.log_once"))
    caplog.set_level(logging.DEBUG, logger="tests.log_once")
    for _ in range(3):
        once.log("cause", logging.WARNING, "it broke: %s", "x")
    once.log("other", logging.WARNING, "another")
    levels = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert levels == [
        (logging.WARNING, "it broke: x"),
        (logging.DEBUG, "it broke: x"),
        (logging.DEBUG, "it broke: x"),
        (logging.WARNING, "another"),
    ]
    once.reset()
    once.log("cause", logging.WARNING, "again")
    assert caplog.records[-1].levelno == logging.WARNING


class _EmbedRequestsOnly(GoogleGenAIHooks):
    """A span on the SDK's transport method, for embedding requests only: the operation is
    picked at run time from its positional arguments (``request(method, path, body)``),
    as botocore's ``_make_api_call(operation_name, api_params)`` picks it."""

    seen: list[tuple[object, ...]]

    def request(self, target, instance, kwargs, args=()):
        self.seen.append(args)
        path = args[1] if len(args) > 1 else ""
        if not isinstance(path, str) or "mbedContent" not in path:
            return None  # not ours: runs untouched
        return RequestInfo("gcp.gemini", "gemini-embedding-001", operation="embeddings"), kwargs

    def on_response(self, invocation, target, response):
        invocation.response_model = "from-the-transport"

    def is_stream(self, result):
        return False


def test_hooks_see_positional_arguments_and_may_pass_a_call_through(
    gemini_server, gemini_server_session, tracer_provider, spans
):
    telemetry = build_telemetry(tracer_provider)
    hooks = _EmbedRequestsOnly(telemetry)
    hooks.seen = []
    target = MethodTarget("google.genai._api_client", "BaseApiClient.request", "", False)
    client = gemini_server_session.client()
    assert wrap_target(hooks, target, telemetry)
    try:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
        assert spans() == []  # passed through: no span
        client.models.embed_content(model="gemini-embedding-001", contents=["one", "two"])
    finally:
        unwrap_target(target)

    assert [args[0] for args in hooks.seen] == ["post", "post"]
    [span] = spans()
    assert span.attributes["gen_ai.operation.name"] == "embeddings"
    assert span.attributes["gen_ai.response.model"] == "from-the-transport"
