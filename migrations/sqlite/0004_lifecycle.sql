-- Data lifecycle (issue 10).
-- A blob whose bytes fsck found missing or corrupt: reads answer 404 until it is pushed again.
ALTER TABLE blobs ADD COLUMN lost_at INTEGER;
-- Garbage collection asks, per link, whether a manifest of the repository references the blob.
CREATE INDEX manifest_refs_repo_child ON manifest_refs(repo_id, child_digest);
-- Retention and immutable tags of a collection, set by its owners; patterns are JSON arrays
-- of globs (`*`, `?`).
CREATE TABLE collection_policies (
    collection_id INTEGER PRIMARY KEY REFERENCES collections(id) ON DELETE CASCADE,
    keep_newest INTEGER,
    keep_patterns TEXT,
    untagged_after_secs INTEGER,
    immutable_patterns TEXT,
    updated_at INTEGER NOT NULL
);
-- S3 objects garbage collection has taken out of the database; deleted a pass later, so a
-- read that resolved the object before still finds it.
CREATE TABLE doomed_objects (
    storage_key TEXT PRIMARY KEY,
    doomed_at INTEGER NOT NULL
);
