-- The sealer's work queue: one row per journal entry not sealed yet, written in the same
-- transaction as the entry and removed in the transaction that seals it. Finding what to seal
-- then costs the length of the tail, not of the whole journal. The journal itself stays
-- append-only; this table is bookkeeping, not history.
CREATE TABLE journal_unsealed (
    entry_id TEXT PRIMARY KEY NOT NULL,
    network_id TEXT NOT NULL
);
CREATE INDEX journal_unsealed_network ON journal_unsealed (network_id, entry_id);
INSERT INTO journal_unsealed (entry_id, network_id)
SELECT e.id, e.network_id FROM journal_entries e
WHERE NOT EXISTS (SELECT 1 FROM journal_seals s WHERE s.entry_id = e.id);
