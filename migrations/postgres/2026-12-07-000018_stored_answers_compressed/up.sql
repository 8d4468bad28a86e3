-- A stored answer (what an Idempotency-Key's retry replays) of 16 KiB or more is kept
-- compressed by the service (zstd), here, instead of as text in response_body. A 52-week
-- preview among 10,000 members answers 2.5 MB of JSON: sent to PostgreSQL as text, checked as
-- UTF-8 and compressed again by it, storing it cost PostgreSQL about 20-30 ms of CPU a preview,
-- on the request's path (bench/analysis.md). The bytes come compressed: PostgreSQL is not to
-- try compressing them again (EXTERNAL: out of line when large, as they are).
ALTER TABLE idempotency_keys ADD COLUMN response_zstd bytea;
ALTER TABLE idempotency_keys ALTER COLUMN response_zstd SET STORAGE EXTERNAL;
