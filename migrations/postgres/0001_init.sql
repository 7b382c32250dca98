-- berth schema, PostgreSQL dialect: the same tables as migrations/sqlite, with 64-bit
-- integers, BYTEA, and the "C" collation on names so that listings sort and compare by
-- bytes as on SQLite. Times are unix seconds; booleans are 0/1 integers (the Any driver).

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('superuser', 'admin', 'user')),
    active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);

CREATE TABLE teams (
    id BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    owner_id BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL
);

CREATE TABLE team_members (
    team_id BIGINT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members(user_id);

CREATE TABLE collections (
    id BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    private BIGINT NOT NULL,
    auto_created BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

-- A member is a user or a team, never both.
CREATE TABLE collection_members (
    collection_id BIGINT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
    team_id BIGINT REFERENCES teams(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'contributor')),
    CHECK ((user_id IS NULL) <> (team_id IS NULL))
);
CREATE UNIQUE INDEX collection_members_user ON collection_members(collection_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX collection_members_team ON collection_members(collection_id, team_id) WHERE team_id IS NOT NULL;

CREATE TABLE repositories (
    id BIGSERIAL PRIMARY KEY,
    collection_id BIGINT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX repositories_collection ON repositories(collection_id);

-- One row per verified blob in storage; the bytes live at the key formatted from digest.
CREATE TABLE blobs (
    digest TEXT COLLATE "C" PRIMARY KEY,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A blob is readable through a repository only while linked there.
CREATE TABLE repo_blobs (
    repo_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT COLLATE "C" NOT NULL REFERENCES blobs(digest),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX repo_blobs_digest ON repo_blobs(digest);

-- Manifests are stored byte-exact in the database (at most limits.max_manifest_bytes).
CREATE TABLE manifests (
    repo_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT COLLATE "C" NOT NULL,
    media_type TEXT NOT NULL,
    content BYTEA NOT NULL,
    size BIGINT NOT NULL,
    artifact_type TEXT,
    subject TEXT,
    annotations TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX manifests_subject ON manifests(repo_id, subject) WHERE subject IS NOT NULL;

-- What each manifest references (blobs and child manifests), for GC and integrity.
CREATE TABLE manifest_refs (
    repo_id BIGINT NOT NULL,
    manifest_digest TEXT NOT NULL,
    child_digest TEXT NOT NULL,
    PRIMARY KEY (repo_id, manifest_digest, child_digest),
    FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_refs_child ON manifest_refs(child_digest);

CREATE TABLE tags (
    repo_id BIGINT NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repo_id, name),
    FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
);

-- Durable upload sessions: offset and serialized hash state as of the last flushed chunk.
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    repo_name TEXT NOT NULL,
    subject TEXT NOT NULL,
    upload_offset BIGINT NOT NULL,
    hash_state BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    pkcs8 BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    read_only BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT,
    revoked BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);

-- Refresh tokens for docker login, stored as SHA-256; bound to the credential that minted them.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    api_token_id TEXT REFERENCES api_tokens(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
