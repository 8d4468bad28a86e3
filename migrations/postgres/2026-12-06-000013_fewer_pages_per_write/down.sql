ALTER TABLE journal_unsealed DROP CONSTRAINT journal_unsealed_pkey;
ALTER TABLE journal_unsealed ADD PRIMARY KEY (entry_id);
CREATE INDEX journal_unsealed_network ON journal_unsealed (network_id, entry_id);

DROP INDEX contributions_corrects;
CREATE UNIQUE INDEX contributions_corrects ON contributions(corrects);
