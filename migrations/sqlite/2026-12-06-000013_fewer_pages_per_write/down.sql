CREATE TABLE journal_unsealed_old (
    entry_id TEXT PRIMARY KEY NOT NULL,
    network_id TEXT NOT NULL
);
INSERT INTO journal_unsealed_old (entry_id, network_id)
SELECT entry_id, network_id FROM journal_unsealed;
DROP TABLE journal_unsealed;
ALTER TABLE journal_unsealed_old RENAME TO journal_unsealed;
CREATE INDEX journal_unsealed_network ON journal_unsealed (network_id, entry_id);

DROP INDEX contributions_corrects;
CREATE UNIQUE INDEX contributions_corrects ON contributions(corrects);
