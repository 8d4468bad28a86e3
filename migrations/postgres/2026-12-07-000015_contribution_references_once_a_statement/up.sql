-- A contribution's network, agent and recorder are checked once a statement instead of once a
-- row. A foreign key runs a query of its own for each row it checks (an executor start-up with
-- a row lock, an index scan, its end): three a contribution, about a third of PostgreSQL's CPU
-- in a batch of 1,000. A statement-level trigger checks every row the statement inserted in one
-- query, with the same guarantee as long as no network or agent can go away, which the
-- triggers at the end of this file make sure of (the service never removes either).
ALTER TABLE contributions
    DROP CONSTRAINT contributions_network_id_fkey,
    DROP CONSTRAINT contributions_agent_id_fkey,
    DROP CONSTRAINT contributions_recorded_by_fkey;

CREATE FUNCTION contributions_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing TEXT;
BEGIN
    -- One query for the statement's rows: three index probes a row, no query of their own.
    IF NOT EXISTS (SELECT 1 FROM inserted AS c
                   WHERE NOT EXISTS (SELECT 1 FROM networks AS n WHERE n.id = c.network_id)
                      OR NOT EXISTS (SELECT 1 FROM agents AS a WHERE a.id = c.agent_id)
                      OR NOT EXISTS (SELECT 1 FROM agents AS a WHERE a.id = c.recorded_by)) THEN
        RETURN NULL;
    END IF;
    -- Refused: name the first reference missing, as a foreign key's error would.
    SELECT format('%s %s', r.col, r.id) INTO missing
    FROM (SELECT 'network_id' AS col, c.network_id AS id, 1 AS o FROM inserted AS c
          WHERE NOT EXISTS (SELECT 1 FROM networks AS n WHERE n.id = c.network_id)
          UNION ALL
          SELECT 'agent_id', c.agent_id, 2 FROM inserted AS c
          WHERE NOT EXISTS (SELECT 1 FROM agents AS a WHERE a.id = c.agent_id)
          UNION ALL
          SELECT 'recorded_by', c.recorded_by, 3 FROM inserted AS c
          WHERE NOT EXISTS (SELECT 1 FROM agents AS a WHERE a.id = c.recorded_by)) AS r
    ORDER BY r.o, r.id
    LIMIT 1;
    RAISE EXCEPTION 'insert on contributions: % is not present', missing
        USING ERRCODE = 'foreign_key_violation', TABLE = 'contributions';
END
$$;
CREATE TRIGGER contributions_references AFTER INSERT ON contributions
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION contributions_references();

-- Networks and agents stay: no row is deleted, no id changed, no table truncated.
CREATE FUNCTION holoptic_refuse_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: contributions refer to it', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
END
$$;
CREATE TRIGGER networks_kept BEFORE DELETE ON networks
    FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_removal();
CREATE TRIGGER networks_id_kept BEFORE UPDATE OF id ON networks
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION holoptic_refuse_removal();
CREATE TRIGGER networks_not_truncated BEFORE TRUNCATE ON networks
    FOR EACH STATEMENT EXECUTE FUNCTION holoptic_refuse_removal();
CREATE TRIGGER agents_kept BEFORE DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_removal();
CREATE TRIGGER agents_id_kept BEFORE UPDATE OF id ON agents
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION holoptic_refuse_removal();
CREATE TRIGGER agents_not_truncated BEFORE TRUNCATE ON agents
    FOR EACH STATEMENT EXECUTE FUNCTION holoptic_refuse_removal();
