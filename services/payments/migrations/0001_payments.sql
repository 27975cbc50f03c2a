-- Payments, refunds, idempotency keys, receipts and the per-day rollup behind the stats.
CREATE TABLE payments (
    id uuid PRIMARY KEY,
    organization_id text NOT NULL,
    member_id text NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    method text NOT NULL CHECK (method IN ('card_present', 'card', 'sepa_debit', 'cash')),
    capture_method text NOT NULL CHECK (capture_method IN ('automatic', 'manual')),
    status text NOT NULL,
    charge_model text NOT NULL CHECK (charge_model IN ('direct', 'destination', 'none')),
    stripe_account_id text,
    -- The fee policy when the payment was made (a partial capture recomputes the fee with it).
    fee_percent_bps integer NOT NULL DEFAULT 0,
    fee_minimum bigint NOT NULL DEFAULT 0,
    application_fee_amount bigint NOT NULL DEFAULT 0 CHECK (application_fee_amount >= 0),
    amount_captured bigint NOT NULL DEFAULT 0,
    amount_refunded bigint NOT NULL DEFAULT 0,
    application_fee_refunded bigint NOT NULL DEFAULT 0,
    stripe_payment_intent_id text UNIQUE,
    stripe_charge_id text,
    client_secret text,
    description text NOT NULL DEFAULT '',
    receipt_email text NOT NULL DEFAULT '',
    metadata jsonb NOT NULL DEFAULT '{}',
    decline_code text,
    failure_message text,
    local_id text,
    local_date date NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (amount_refunded <= amount_captured)
);

CREATE UNIQUE INDEX payments_local_id_key ON payments (organization_id, local_id) WHERE local_id IS NOT NULL;
CREATE INDEX payments_org_created_idx ON payments (organization_id, created_at DESC, id DESC);
CREATE INDEX payments_member_created_idx ON payments (member_id, created_at DESC, id DESC);

CREATE TABLE refunds (
    id uuid PRIMARY KEY,
    payment_id uuid NOT NULL REFERENCES payments (id),
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    reason text NOT NULL DEFAULT '',
    status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    stripe_refund_id text UNIQUE,
    application_fee_refunded bigint NOT NULL DEFAULT 0,
    failure_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refunds_payment_idx ON refunds (payment_id, created_at);

-- One row per (organisation, member, key): the request's fingerprint and, once known, its answer.
CREATE TABLE idempotency_keys (
    organization_id text NOT NULL,
    member_id text NOT NULL,
    key text NOT NULL,
    operation text NOT NULL,
    fingerprint text NOT NULL,
    payment_id uuid,
    refund_id uuid,
    response bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, member_id, key)
);

-- Per organisation, member, local day and currency: what the stats read (small, whatever the row count).
CREATE TABLE daily_totals (
    organization_id text NOT NULL,
    day date NOT NULL,
    member_id text NOT NULL,
    currency text NOT NULL,
    count bigint NOT NULL DEFAULT 0,
    gross bigint NOT NULL DEFAULT 0,
    fees bigint NOT NULL DEFAULT 0,
    refunded bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (organization_id, day, member_id, currency)
);

CREATE INDEX daily_totals_member_idx ON daily_totals (member_id, day);

-- E-mail receipts, sent once per payment.
CREATE TABLE receipts (
    payment_id uuid PRIMARY KEY REFERENCES payments (id),
    email text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX receipts_due_idx ON receipts (next_attempt_at) WHERE status = 'pending';
