-- Operators replay one event by its id, without knowing its source.
CREATE INDEX inbox_events_event_id_idx ON inbox_events (event_id);
