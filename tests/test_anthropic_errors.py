"""Anthropic API errors: the SDK's exception reaches the caller as the SDK raised it,
and the one span of the call carries ``error.type`` and status ERROR."""

from __future__ import annotations

import anthropic
import pytest
from opentelemetry.trace import StatusCode

from tests import test_anthropic_calls
from tests.test_anthropic_calls import (
    MATRIX,
    NATIVE_TRACING,
    run_call,
    sdk_spans,
)

STATUSES = [
    pytest.param(429, anthropic.RateLimitError, "rate_limit_error", id="429"),
    pytest.param(500, anthropic.InternalServerError, "api_error", id="500"),
]

clients = test_anthropic_calls.clients  # the shared client fixture


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize(("shape", "mode"), MATRIX)
@pytest.mark.parametrize(("status", "error_class", "error_kind"), STATUSES)
async def test_http_error(
    flavour, shape, mode, status, error_class, error_kind, anthropic_server, clients,
    instrument, spans, span_exporter,
):  # fmt: skip
    anthropic_server.next_error(status)

    with pytest.raises(error_class) as caught:
        await run_call(clients(flavour, native=True), "messages", shape, mode)

    error = caught.value
    assert type(error) is error_class
    assert error.status_code == status
    assert error.body["error"]["type"] == error_kind
    assert error.response.headers["request-id"].startswith("req_fake")
    [span] = spans()
    attrs = dict(span.attributes)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs["error.type"] == error_class.__qualname__
    assert "gen_ai.usage.input_tokens" not in attrs
    assert "gen_ai.usage.output_tokens" not in attrs
    # The SDK's own span, with its own error type, is still our child.
    if not NATIVE_TRACING:
        return
    [native] = sdk_spans(span_exporter)
    assert native.parent.span_id == span.context.span_id
    assert native.attributes["error.type"] == error_kind


async def test_caller_gets_the_sdks_own_exception_object(
    anthropic_server, clients, instrument, spans, monkeypatch
):
    """Nothing re-raises a copy: the object the SDK raised is the one the caller catches."""
    raised = []
    client = clients("sync")
    original = client._make_status_error

    def remember(*args, **kwargs):
        error = original(*args, **kwargs)
        raised.append(error)
        return error

    monkeypatch.setattr(client, "_make_status_error", remember)
    anthropic_server.next_error(429)

    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=[])

    assert raised == [caught.value]
    assert raised[0] is caught.value
