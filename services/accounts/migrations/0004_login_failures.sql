-- Failed sign-ins per account (a keyed digest of the e-mail, never the e-mail) and per client address:
-- past a few, sign-in is refused for a while (429, Retry-After), across every gateway replica.
CREATE TABLE login_failures (
    key text PRIMARY KEY,
    failures integer NOT NULL,
    last_failure_at timestamptz NOT NULL,
    locked_until timestamptz
);
