-- Payment creation per member: the current one-minute window (opened by its first request) and its count.
CREATE TABLE rate_windows (
    member_id text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    count integer NOT NULL
);
