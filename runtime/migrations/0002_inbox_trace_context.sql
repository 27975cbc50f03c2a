-- The delivery's trace context (W3C traceparent), so that events applied later by the worker
-- or a replay stay in the trace of the delivery that recorded them.
ALTER TABLE inbox_events ADD COLUMN trace_context text;

-- Operations list the newest events of a status (failed, pending).
CREATE INDEX inbox_events_status_idx ON inbox_events (status, received_at DESC);
