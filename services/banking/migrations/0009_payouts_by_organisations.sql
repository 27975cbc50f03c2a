-- Why Stripe could not pay a payout out (status "failed"), shown to the organisation and the operator.
ALTER TABLE payouts ADD COLUMN failure_code text;
ALTER TABLE payouts ADD COLUMN failure_message text;

-- A manual payout asked for with an Idempotency-Key: its amount is fixed when first asked (the
-- balance then), so a retry sends Stripe the same request under the same key and gets the same payout.
CREATE TABLE payout_requests (
    organization_id text NOT NULL,
    idempotency_key text NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    stripe_payout_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, idempotency_key)
);
