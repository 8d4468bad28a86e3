-- Every journal entry is queued for the sealer by the database itself, in the statement that
-- appends it: one statement less a write, and no entry can be appended without being queued.
CREATE TRIGGER journal_entries_queue AFTER INSERT ON journal_entries
BEGIN
    INSERT INTO journal_unsealed (network_id, entry_id) VALUES (NEW.network_id, NEW.id);
END;
