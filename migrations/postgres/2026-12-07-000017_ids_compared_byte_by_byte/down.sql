-- Every text column back to the database's own collation (see up.sql).
DROP TRIGGER agents_id_kept ON agents;
DROP TRIGGER networks_id_kept ON networks;
DO $$
DECLARE
    t record;
    has_rows boolean;
BEGIN
    FOR t IN
        SELECT table_name,
               string_agg(format('ALTER COLUMN %I TYPE text COLLATE "default"', column_name), ', '
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
