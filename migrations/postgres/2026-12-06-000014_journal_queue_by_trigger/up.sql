-- Every journal entry is queued for the sealer by the database itself, in the statement that
-- appends it: one round trip less a write, and no entry can be appended without being
-- queued. A statement-level trigger, so a multi-row append queues its entries in one insert.
CREATE FUNCTION journal_entries_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO journal_unsealed (network_id, entry_id)
    SELECT network_id, id FROM appended;
    RETURN NULL;
END
$$;
CREATE TRIGGER journal_entries_queue AFTER INSERT ON journal_entries
REFERENCING NEW TABLE AS appended
FOR EACH STATEMENT EXECUTE FUNCTION journal_entries_queue();
