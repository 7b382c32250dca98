-- S3 storage: a completed blob stays at its upload's object key (no copy), recorded here;
-- an upload session keeps its multipart id, part ETags and tail length as JSON.
ALTER TABLE blobs ADD COLUMN storage_key TEXT;
ALTER TABLE uploads ADD COLUMN store_state TEXT;
