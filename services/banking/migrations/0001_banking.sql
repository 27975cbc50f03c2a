-- Bank accounts (Qonto) and their transactions.
CREATE TABLE bank_accounts (
    id text PRIMARY KEY,                      -- Qonto's bank account id
    slug text NOT NULL,
    iban text NOT NULL,
    name text,
    currency text NOT NULL,
    legal_entity text,
    balance_cents bigint NOT NULL DEFAULT 0,
    -- Incremental pull cursor: the newest `updated_at` stored for this account.
    sync_cursor timestamptz,
    synced_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bank_transactions (
    id text PRIMARY KEY,                      -- Qonto's `id`
    transaction_id text NOT NULL UNIQUE,      -- Qonto's `transaction_id`: the upsert key
    bank_account_id text,
    iban text,
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    currency text NOT NULL,
    side text NOT NULL CHECK (side IN ('credit', 'debit')),
    operation_type text,
    label text,
    reference text,
    note text,
    status text NOT NULL,
    settled_at timestamptz,
    emitted_at timestamptz,
    updated_at timestamptz,                   -- Qonto's, orders versions of one transaction
    -- Left to people: the rules never match it again after a manual unmatch.
    auto_match boolean NOT NULL DEFAULT true,
    raw jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    modified_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bank_transactions_list_idx ON bank_transactions (created_at, id);
CREATE INDEX bank_transactions_settled_idx ON bank_transactions (settled_at) WHERE side = 'credit';

-- Stripe payouts (platform: stripe_account_id = '') and the balance transactions they carry.
CREATE TABLE payouts (
    id uuid PRIMARY KEY,
    stripe_payout_id text NOT NULL UNIQUE,
    stripe_account_id text NOT NULL DEFAULT '',
    organization_id text,
    amount bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL,
    arrival_date timestamptz,
    stripe_created_at timestamptz,
    statement_descriptor text,
    trace_id text,
    -- Stripe's `created` of the newest event applied: an older event never overwrites newer state.
    event_created_at timestamptz,
    auto_match boolean NOT NULL DEFAULT true,
    balance_synced boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payouts_list_idx ON payouts (created_at, id);
CREATE INDEX payouts_arrival_idx ON payouts (arrival_date);

CREATE TABLE payout_balance_transactions (
    payout_id uuid NOT NULL REFERENCES payouts (id) ON DELETE CASCADE,
    stripe_balance_transaction_id text NOT NULL,
    type text NOT NULL,                       -- charge, payment, refund, application_fee, payout, ...
    source text,
    amount bigint NOT NULL,
    fee bigint NOT NULL,
    net bigint NOT NULL,
    currency text NOT NULL,
    created timestamptz NOT NULL,
    PRIMARY KEY (payout_id, stripe_balance_transaction_id)
);

-- One bank credit ↔ one or several payouts.
CREATE TABLE reconciliation_matches (
    id uuid PRIMARY KEY,
    bank_transaction_id text NOT NULL UNIQUE REFERENCES bank_transactions (id),
    rule text NOT NULL,
    explanation text NOT NULL,
    difference bigint NOT NULL,
    manual boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reconciliation_match_payouts (
    match_id uuid NOT NULL REFERENCES reconciliation_matches (id) ON DELETE CASCADE,
    payout_id uuid NOT NULL UNIQUE REFERENCES payouts (id),
    PRIMARY KEY (match_id, payout_id)
);

-- Revenue allocation.
CREATE TABLE legal_entities (
    entity text PRIMARY KEY,
    tax_rate_bps integer NOT NULL CHECK (tax_rate_bps BETWEEN 0 AND 10000),
    position integer NOT NULL
);

CREATE TABLE allocation_rules (
    organization_id text NOT NULL,            -- '' = every organisation without rules of its own
    entity text NOT NULL REFERENCES legal_entities (entity),
    share_bps integer NOT NULL CHECK (share_bps BETWEEN 1 AND 10000),
    PRIMARY KEY (organization_id, entity)
);

-- Daily report sends (Slack): one row per date, retried until delivered.
CREATE TABLE report_outbox (
    report_date date PRIMARY KEY,
    message jsonb NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'sent')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX report_outbox_due_idx ON report_outbox (next_attempt_at) WHERE status = 'pending';
