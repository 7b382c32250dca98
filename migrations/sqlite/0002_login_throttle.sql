-- Failed logins per account and per client address, for slowing down password guessing.
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    first_at INTEGER NOT NULL,
    blocked_until INTEGER NOT NULL
);
