DROP TRIGGER journal_entries_queue ON journal_entries;
DROP FUNCTION journal_entries_queue();
