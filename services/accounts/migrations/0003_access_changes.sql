-- When a member was last disabled, re-enabled or given another role: tokens issued before are
-- refused (the gateway follows these changes through WatchRevocations).
ALTER TABLE members ADD COLUMN access_changed_at timestamptz;
CREATE INDEX members_access_changed_idx ON members (access_changed_at) WHERE access_changed_at IS NOT NULL;
