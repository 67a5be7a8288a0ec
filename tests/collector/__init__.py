"""A real OpenTelemetry collector (rotel) and a local OTLP/HTTP receiver for the tests."""
