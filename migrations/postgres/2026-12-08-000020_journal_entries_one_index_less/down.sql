CREATE INDEX journal_entries_network ON journal_entries(network_id, id);
