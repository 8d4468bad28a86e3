DROP TRIGGER journal_entries_queue;
