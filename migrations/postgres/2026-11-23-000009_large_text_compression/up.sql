-- A batch's journal entry and its stored answer hold up to 1,000 contributions (about
-- 300 KB and 400 KB of JSON). PostgreSQL compresses such values with pglz by default, which
-- took about a tenth of the backend's CPU in batch ingest. lz4 compresses them several times
-- faster. A server built without lz4 keeps them uncompressed instead (EXTERNAL). Only values
-- written from now on change; existing ones stay as they are.
DO $$
BEGIN
    ALTER TABLE journal_entries ALTER COLUMN body SET COMPRESSION lz4;
    ALTER TABLE idempotency_keys ALTER COLUMN response_body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    ALTER TABLE journal_entries ALTER COLUMN body SET STORAGE EXTERNAL;
    ALTER TABLE idempotency_keys ALTER COLUMN response_body SET STORAGE EXTERNAL;
END
$$;
