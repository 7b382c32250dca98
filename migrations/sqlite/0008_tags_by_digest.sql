-- Tags by the manifest they name: deleting a manifest (and the cascade to its tags), the
-- garbage collector's "is this manifest tagged" check and the tags of a digest looked
-- through every tag of the repository without it. At 10,000 tags in one repository:
-- 854 us -> 3 us per lookup, 1.8 ms -> 6 us per manifest delete. Queries on it must not
-- ask for an order by name, or SQLite prefers the primary key to skip a sort.
--
-- The table becomes WITHOUT ROWID at the same time: its rows then live in the primary
-- key's tree, so a tag write still changes two trees (the key and this index), not three,
-- and durable tag creation keeps its rate.
CREATE TABLE tags_by_name (
    repo_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, name),
    FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO tags_by_name (repo_id, name, digest, updated_at) SELECT repo_id, name, digest, updated_at FROM tags;
DROP TABLE tags;
ALTER TABLE tags_by_name RENAME TO tags;
CREATE INDEX tags_digest ON tags(repo_id, digest);
