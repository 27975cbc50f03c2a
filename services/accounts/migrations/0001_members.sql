CREATE TABLE members (
    id uuid PRIMARY KEY,
    organization_id uuid,
    email text NOT NULL,
    name text NOT NULL,
    role text NOT NULL CHECK (role IN ('agent', 'org_admin', 'platform_admin')),
    password_hash text NOT NULL,
    disabled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'platform_admin') = (organization_id IS NULL))
);

CREATE UNIQUE INDEX members_email_key ON members (lower(email));
CREATE INDEX members_organization_idx ON members (organization_id, created_at, id);
