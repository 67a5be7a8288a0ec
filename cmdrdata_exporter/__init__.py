"""cmdrdata exporter: OpenTelemetry GenAI spans -> cmdrdata usage events, delivered durably."""

from cmdrdata_exporter.events import span_to_event, spans_to_events
from cmdrdata_exporter.exporter import CmdrDataSpanExporter, live_exporters

__all__ = ["CmdrDataSpanExporter", "live_exporters", "span_to_event", "spans_to_events"]
