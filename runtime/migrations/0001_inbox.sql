-- The inbox of outside events (Stripe, Qonto), in every service schema that consumes them.
CREATE TABLE inbox_events (
    source text NOT NULL,
    event_id text NOT NULL,
    type text NOT NULL,
    account text,
    created_at timestamptz,
    payload jsonb NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'applied', 'ignored', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    received_at timestamptz NOT NULL DEFAULT now(),
    applied_at timestamptz,
    next_attempt_at timestamptz,
    PRIMARY KEY (source, event_id)
);

CREATE INDEX inbox_events_retry_idx ON inbox_events (next_attempt_at) WHERE status IN ('pending', 'failed');
