"""Our span processor on the SDK TracerProvider: its ``force_flush()`` makes the direct billing
hand-over durable (SPEC §7); one per provider, inert after ``uninstrument()``."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor, billing
from opentelemetry_instrumentation_cmdrdata.span_processor import CmdrDataSpanProcessor


class _FlushCounter:
    """A billing sink that only counts the flushes reaching it."""

    def __init__(self) -> None:
        self.flushes = 0

    def claim_direct(self, span: object) -> None:
        pass

    def submit_direct(self, span: object) -> None:
        pass

    def flush_direct(self) -> None:
        self.flushes += 1


def _ours(provider: TracerProvider) -> list[CmdrDataSpanProcessor]:
    processors = provider._active_span_processor._span_processors  # the SDK's own list
    return [p for p in processors if isinstance(p, CmdrDataSpanProcessor)]


def test_provider_flush_flushes_the_sinks_until_uninstrumented(
    tracer_provider: TracerProvider,
) -> None:
    sink = _FlushCounter()
    billing.register_sink(sink)
    instrumentor = CmdrDataInstrumentor()
    try:
        instrumentor.instrument(tracer_provider=tracer_provider)
        instrumentor.uninstrument()
        instrumentor.instrument(tracer_provider=tracer_provider)
        assert len(_ours(tracer_provider)) == 1  # reused, not added again
        assert tracer_provider.force_flush()
        assert sink.flushes == 1
        instrumentor.uninstrument()
        assert tracer_provider.force_flush()
        assert sink.flushes == 1  # inert: the SDK cannot remove it
    finally:
        instrumentor.uninstrument()
        billing.unregister_sink(sink)


def test_a_failing_sink_does_not_fail_the_flush(tracer_provider: TracerProvider, caplog) -> None:
    class Broken(_FlushCounter):
        def flush_direct(self) -> None:
            raise OSError("disk gone")

    broken, good = Broken(), _FlushCounter()
    billing.register_sink(broken)
    billing.register_sink(good)
    instrumentor = CmdrDataInstrumentor()
    try:
        instrumentor.instrument(tracer_provider=tracer_provider)
        assert tracer_provider.force_flush()
        assert tracer_provider.force_flush()
    finally:
        instrumentor.uninstrument()
        billing.unregister_sink(broken)
        billing.unregister_sink(good)
    assert good.flushes == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["cmdrdata: a billing sink failed to flush: disk gone"]
