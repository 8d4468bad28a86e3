-- A stored answer of 16 KiB or more is kept compressed by the service (zstd) instead of as
-- text in response_body (see the PostgreSQL migration of the same name).
ALTER TABLE idempotency_keys ADD COLUMN response_zstd BLOB;
