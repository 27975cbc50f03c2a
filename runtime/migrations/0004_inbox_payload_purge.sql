-- The worker empties the payloads of settled events past their retention (runtime/inbox.py).
CREATE INDEX inbox_events_unpurged_idx ON inbox_events (received_at) WHERE payload <> '{}'::jsonb;
