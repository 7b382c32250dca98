-- Web-interface sign-ins. The cookie holds a random secret; only its SHA-256 is stored, so
-- a copy of the database opens no session. A session dies at its expiry, at sign-out, with
-- its user, and is refused once the user is inactive or changed their password after it began.
CREATE TABLE ui_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX ui_sessions_user ON ui_sessions(user_id);
CREATE INDEX ui_sessions_expires ON ui_sessions(expires_at);
