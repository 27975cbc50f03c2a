-- Creations at Stripe recorded before Stripe is asked: the Idempotency-Key sent to Stripe comes
-- from the row, so a request retried after Stripe acted (answer lost, or our write failed) finds
-- the same row and gets Stripe's first object back instead of a new one. Deleted once the
-- location or reader is stored.
CREATE TABLE stripe_creations (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('location', 'reader')),
    request_digest text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, kind, request_digest)
);
