-- The audit trail: one hash chain per organisation ('platform' for actions on the platform itself).
-- Each entry's hash is SHA-256 over the previous entry's hash and the entry's canonical encoding
-- (services/accounts/domain.py `audit_hash`); `python -m services.accounts.cli verify-audit` walks the
-- chains and names the first entry edited, deleted or out of place. Ids, roles and statuses only.
CREATE TABLE audit_entries (
    id uuid PRIMARY KEY,
    chain text NOT NULL,
    sequence bigint NOT NULL CHECK (sequence > 0),
    organization_id text,
    actor_id text NOT NULL,
    actor_role text NOT NULL,
    actor_organization_id text,
    action text NOT NULL,
    targets jsonb NOT NULL,
    before jsonb,
    after jsonb,
    request_id text NOT NULL,
    trace_id text NOT NULL,
    source text NOT NULL,
    source_id text NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    previous_hash bytea NOT NULL,
    hash bytea NOT NULL,
    UNIQUE (chain, sequence),
    UNIQUE (source, source_id)
);

-- The last entry of each chain: appends lock it (FOR UPDATE), so a chain never forks, and the
-- verifier compares it with the last entry found, so deleting the newest entries shows too.
CREATE TABLE audit_chain_heads (
    chain text PRIMARY KEY,
    sequence bigint NOT NULL,
    hash bytea NOT NULL
);

-- Newest first, per organisation or all of them (GET /v1/audit).
CREATE INDEX audit_entries_organization_idx ON audit_entries (organization_id, recorded_at DESC, id DESC);
CREATE INDEX audit_entries_recorded_idx ON audit_entries (recorded_at DESC, id DESC);

-- Append-only: the service's own role may not change or remove an entry (it owns the table, so a
-- revoked privilege alone could be granted back; the trigger refuses it as well). A superuser can
-- still tamper, which the verifier detects.
CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_entries FROM CURRENT_USER;
