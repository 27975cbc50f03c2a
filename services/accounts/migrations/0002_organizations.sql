-- Organisations and the state of their Stripe connected account.
-- name, email and bank_account_iban hold AES-GCM ciphertexts (see services/accounts/crypto.py);
-- email_index is the keyed blind index (HMAC-SHA256) of the normalised e-mail.
CREATE TABLE organizations (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    email_index bytea NOT NULL,
    encryption_key_id text NOT NULL,
    country text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    business_type text NOT NULL CHECK (business_type IN ('non_profit', 'company', 'individual')),
    address jsonb NOT NULL,
    charge_model text NOT NULL DEFAULT 'direct' CHECK (charge_model IN ('direct', 'destination')),
    fee_percent_bps integer NOT NULL DEFAULT 0 CHECK (fee_percent_bps BETWEEN 0 AND 10000),
    fee_minimum bigint NOT NULL DEFAULT 0 CHECK (fee_minimum >= 0),
    legal_entity text NOT NULL DEFAULT '',
    bank_account_iban text,
    timezone text NOT NULL DEFAULT 'Europe/Paris',
    default_currency text NOT NULL DEFAULT 'eur',
    stripe_account_id text UNIQUE,
    stripe_account_type text,
    charges_enabled boolean NOT NULL DEFAULT false,
    payouts_enabled boolean NOT NULL DEFAULT false,
    details_submitted boolean NOT NULL DEFAULT false,
    requirements_due text[] NOT NULL DEFAULT '{}',
    -- When Stripe's account was in the stored state (event `created` or read time): older events never win.
    stripe_state_at timestamptz,
    stripe_updated_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX organizations_email_index_idx ON organizations (email_index);
CREATE INDEX organizations_created_idx ON organizations (created_at, id);

ALTER TABLE members
    ADD CONSTRAINT members_organization_fk FOREIGN KEY (organization_id) REFERENCES organizations (id);
