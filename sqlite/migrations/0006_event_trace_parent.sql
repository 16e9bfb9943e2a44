-- The W3C traceparent of the span that published an event, when tracing is
-- on (OTEL_EXPORTER_OTLP_ENDPOINT), so that its delivery attempts, made
-- later and perhaps by another process, join the publisher's trace. NULL
-- when tracing is off.
ALTER TABLE events ADD COLUMN trace_parent TEXT;
