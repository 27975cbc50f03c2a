-- Pennylane push: settings per entity (the platform's books or an organisation's) and one row
-- per book entry pushed or tried, keyed by its external reference (the ledger entry's piece number).

CREATE TABLE pennylane_settings (
    entity text PRIMARY KEY,               -- 'platform' or an organisation id
    api_token_ciphertext text NOT NULL,    -- AES-GCM (runtime.crypto), never the token in clear
    journal_ids jsonb NOT NULL,            -- FEC journal code -> Pennylane journal id
    ledger_account_ids jsonb NOT NULL,     -- FEC account number -> Pennylane ledger account id
    start_date date NOT NULL,              -- no entry before this day is pushed
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pennylane_entries (
    entity text NOT NULL,
    reference text NOT NULL,
    journal text NOT NULL,
    day date NOT NULL,
    status text NOT NULL CHECK (status IN ('sending', 'pushed', 'failed')),
    -- A creation was sent whose answer was not recorded (crash, lost answer, 5xx): Pennylane may
    -- hold the entry, so it is looked up by reference before any new creation.
    maybe_sent boolean NOT NULL DEFAULT false,
    pennylane_id bigint,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, reference)
);

CREATE INDEX pennylane_entries_failed ON pennylane_entries (entity, updated_at) WHERE status <> 'pushed';
