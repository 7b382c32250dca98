-- berth schema, SQLite dialect. Times are unix seconds. Booleans are 0/1 integers so the
-- same queries run on PostgreSQL through sqlx's Any driver.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('superuser', 'admin', 'user')),
    active INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
);

CREATE TABLE teams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    owner_id INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL
);

CREATE TABLE team_members (
    team_id INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members(user_id);

CREATE TABLE collections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    private INTEGER NOT NULL,
    auto_created INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

-- A member is a user or a team, never both.
CREATE TABLE collection_members (
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    team_id INTEGER REFERENCES teams(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'contributor')),
    CHECK ((user_id IS NULL) <> (team_id IS NULL))
);
CREATE UNIQUE INDEX collection_members_user ON collection_members(collection_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX collection_members_team ON collection_members(collection_id, team_id) WHERE team_id IS NOT NULL;

CREATE TABLE repositories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE INDEX repositories_collection ON repositories(collection_id);

-- One row per verified blob in storage; the bytes live at the key formatted from digest.
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- A blob is readable through a repository only while linked there.
CREATE TABLE repo_blobs (
    repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL REFERENCES blobs(digest),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX repo_blobs_digest ON repo_blobs(digest);

-- Manifests are stored byte-exact in the database (at most limits.max_manifest_bytes).
CREATE TABLE manifests (
    repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    content BLOB NOT NULL,
    size INTEGER NOT NULL,
    artifact_type TEXT,
    subject TEXT,
    annotations TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX manifests_subject ON manifests(repo_id, subject) WHERE subject IS NOT NULL;

-- What each manifest references (blobs and child manifests), for GC and integrity.
CREATE TABLE manifest_refs (
    repo_id INTEGER NOT NULL,
    manifest_digest TEXT NOT NULL,
    child_digest TEXT NOT NULL,
    PRIMARY KEY (repo_id, manifest_digest, child_digest),
    FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_refs_child ON manifest_refs(child_digest);

CREATE TABLE tags (
    repo_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, name),
    FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
);

-- Durable upload sessions: offset and serialized hash state as of the last flushed chunk.
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    repo_name TEXT NOT NULL,
    subject TEXT NOT NULL,
    upload_offset INTEGER NOT NULL,
    hash_state BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    pkcs8 BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    read_only INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);

-- Refresh tokens for docker login, stored as SHA-256; bound to the credential that minted them.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    api_token_id TEXT REFERENCES api_tokens(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);
