-- One b-tree less written per journal entry. `journal_entries_network` (network_id, id) was
-- read by no query: the sealer reads a network's unsealed entries through its queue
-- (`journal_unsealed`, keyed by network and entry), and journal reads, exports and
-- verification through the seals (`journal_seals`, keyed by network and seq), joining the
-- entries by their primary key. Every entry still paid for the index: on SQLite a leaf page
-- more in each commit (the rows a single POST writes, sqlite3 at one connection: 6,780 ->
-- 7,432 a second, four alternated rounds, bench/analysis.md).
DROP INDEX journal_entries_network;
