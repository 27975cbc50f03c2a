-- The audit outbox (runtime/audit.py): an action's audit record is written here in the action's
-- own transaction, and a worker forwards it to Accounts, which chains it (AppendAuditEntries,
-- idempotent by source service + id), then deletes it. Ids, roles and statuses only: no personal data.
CREATE TABLE audit_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id text,
    actor_id text NOT NULL,
    actor_role text NOT NULL,
    actor_organization_id text,
    action text NOT NULL,
    targets jsonb NOT NULL,
    before jsonb,
    after jsonb,
    request_id text NOT NULL DEFAULT '',
    trace_id text NOT NULL DEFAULT '',
    occurred_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
