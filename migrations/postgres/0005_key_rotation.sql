-- Signing keys get a generation: the highest signs, and the unique index decides races
-- (two replicas creating the first key at once, two rotations at once).
ALTER TABLE signing_keys ADD COLUMN generation BIGINT;
UPDATE signing_keys SET generation = (
    SELECT COUNT(*) FROM signing_keys k
    WHERE k.created_at < signing_keys.created_at
       OR (k.created_at = signing_keys.created_at AND k.kid <= signing_keys.kid)
);
CREATE UNIQUE INDEX signing_keys_generation ON signing_keys (generation);
