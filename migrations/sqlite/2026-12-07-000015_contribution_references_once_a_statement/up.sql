-- SQLite keeps its foreign keys on contributions: they are checked inside the statement's own
-- program, with no query of their own (see the PostgreSQL migration of the same name, which
-- replaces them there with one check a statement). Both backends now refuse to remove a
-- network or an agent, or to change its id: the service never does either.
CREATE TRIGGER networks_kept BEFORE DELETE ON networks
BEGIN SELECT RAISE(ABORT, 'DELETE on networks is not allowed: contributions refer to it'); END;
CREATE TRIGGER networks_id_kept BEFORE UPDATE OF id ON networks WHEN OLD.id IS NOT NEW.id
BEGIN SELECT RAISE(ABORT, 'UPDATE on networks is not allowed: contributions refer to it'); END;
CREATE TRIGGER agents_kept BEFORE DELETE ON agents
BEGIN SELECT RAISE(ABORT, 'DELETE on agents is not allowed: contributions refer to it'); END;
CREATE TRIGGER agents_id_kept BEFORE UPDATE OF id ON agents WHEN OLD.id IS NOT NEW.id
BEGIN SELECT RAISE(ABORT, 'UPDATE on agents is not allowed: contributions refer to it'); END;
