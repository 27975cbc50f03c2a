-- Disputes (chargebacks) on card payments, as Stripe has them: one row per Stripe dispute, written
-- only by services/payments/disputes.py from the dispute re-read at Stripe (its status moves by
-- domain.dispute_may_move). Money columns say what was recorded once: the amount and Stripe's fee
-- withdrawn, the amount reinstated when won, and under destination charges the transfer reversal
-- that recovers the amount from the organisation and the transfer that gives it back when won.
CREATE TABLE disputes (
    id uuid PRIMARY KEY,
    stripe_dispute_id text NOT NULL UNIQUE,
    payment_id uuid NOT NULL REFERENCES payments (id),
    organization_id text NOT NULL,
    member_id text NOT NULL,
    charge_model text NOT NULL,
    amount bigint NOT NULL CHECK (amount >= 0),
    currency text NOT NULL,
    reason text NOT NULL DEFAULT '',
    status text NOT NULL,
    evidence_due_by timestamptz,
    evidence_submissions integer NOT NULL DEFAULT 0,
    -- Money, once each (0 until it happened).
    withdrawn bigint NOT NULL DEFAULT 0,
    dispute_fee bigint NOT NULL DEFAULT 0,
    withdrawn_at timestamptz,
    reinstated bigint NOT NULL DEFAULT 0,
    reinstated_at timestamptz,
    closed_at timestamptz,
    -- Destination charges: the transfer reversed (and given back when won).
    stripe_transfer_id text,
    transfer_reversed bigint NOT NULL DEFAULT 0,
    stripe_transfer_reversal_id text,
    transfer_returned bigint NOT NULL DEFAULT 0,
    stripe_return_transfer_id text,
    -- When Stripe refused one of those two moves (the platform's balance was short, say): the
    -- dispute sweeper tries again from DISPUTE_TRANSFER_RETRY_AFTER_SECONDS later; NULL once done.
    transfer_refused_at timestamptz,
    -- The local day it was opened (the organisation's time zone): the day its figures count.
    local_date date NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX disputes_organization_idx ON disputes (organization_id, created_at DESC, id DESC);
CREATE INDEX disputes_listing_idx ON disputes (created_at DESC, id DESC);
CREATE INDEX disputes_payment_idx ON disputes (payment_id);
CREATE INDEX disputes_transfer_retry_idx ON disputes (transfer_refused_at) WHERE transfer_refused_at IS NOT NULL;

-- Disputes in the per-day figures: opened (count and amount) on the day opened, lost on the day closed.
ALTER TABLE daily_totals
    ADD COLUMN disputed_count bigint NOT NULL DEFAULT 0,
    ADD COLUMN disputed bigint NOT NULL DEFAULT 0,
    ADD COLUMN disputes_lost bigint NOT NULL DEFAULT 0;
