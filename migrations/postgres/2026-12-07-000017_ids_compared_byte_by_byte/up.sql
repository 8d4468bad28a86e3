-- Every text column compares byte by byte ("C"), whatever collation the database was created
-- with. Ids, keys and the page bounds that walk them (`id > $after`) are compared on every row
-- a read walks and on every index entry a write places; under a linguistic collation each of
-- those comparisons is a strcoll() call. PostgreSQL's official container image creates
-- databases in en_US.utf8: on such a database a 52-week preview among 10,000 members took
-- 250-440 ms, about twice as long as with "C", and PostgreSQL's CPU halved with "C"
-- (bench/analysis.md). Byte order is also the order SQLite (BINARY) gives and the order the
-- inputs digest hashes ids in, so both backends list tags, aliases and currencies, and page
-- through ids, alike. No row is rewritten; each table's indexes on these columns are rebuilt,
-- and the columns' statistics, which a change of collation drops, are gathered again.
-- Statements kept prepared by instances running meanwhile see their result type change (the
-- README says what that means for an upgrade).
--
-- Every text column of this schema's tables, one ALTER TABLE a table (so each table's indexes
-- are rebuilt once). A column used in a trigger's WHEN cannot change; those two triggers are
-- dropped and made again as they were.
DROP TRIGGER agents_id_kept ON agents;
DROP TRIGGER networks_id_kept ON networks;
DO $$
DECLARE
    t record;
    has_rows boolean;
BEGIN
    FOR t IN
        SELECT table_name,
               string_agg(format('ALTER COLUMN %I TYPE text COLLATE "C"', column_name), ', '
                          ORDER BY ordinal_position) AS alters
        FROM information_schema.columns
        WHERE table_schema = current_schema() AND data_type = 'text'
          AND table_name <> '__diesel_schema_migrations'
        GROUP BY table_name
        ORDER BY table_name
    LOOP
        EXECUTE format('ALTER TABLE %I %s', t.table_name, t.alters);
        -- The change dropped the columns' statistics: gather them again where there are rows.
        -- An empty table is left never analyzed, as it was (PostgreSQL then plans with its
        -- size as it grows); analyzed empty, it would be planned as empty until the next
        -- ANALYZE, and a foreign key's check of it would scan it whole.
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', t.table_name) INTO has_rows;
        IF has_rows THEN
            EXECUTE format('ANALYZE %I', t.table_name);
        END IF;
    END LOOP;
END
$$;
CREATE TRIGGER agents_id_kept BEFORE UPDATE OF id ON agents
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION holoptic_refuse_removal();
CREATE TRIGGER networks_id_kept BEFORE UPDATE OF id ON networks
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION holoptic_refuse_removal();
