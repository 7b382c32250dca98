-- Failed logins per account and per client address, for slowing down password guessing.
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL
);
