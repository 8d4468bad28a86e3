-- Fewer index entries written per contribution (see the SQLite migration of the same name).
--
-- 1. Only a correction has `corrects`; the unique index held a NULL entry for every other
--    contribution. Every query on it compares `corrects` (=, = ANY, a range, IS NOT NULL),
--    which implies NOT NULL, so the partial index serves them all, and uniqueness is unchanged.
DROP INDEX contributions_corrects;
CREATE UNIQUE INDEX contributions_corrects ON contributions(corrects) WHERE corrects IS NOT NULL;

-- 2. The sealer's queue is read only by network and entry id: one index, its primary key,
--    instead of a key on the entry and a second index on (network, entry).
ALTER TABLE journal_unsealed DROP CONSTRAINT journal_unsealed_pkey;
DROP INDEX journal_unsealed_network;
ALTER TABLE journal_unsealed ADD PRIMARY KEY (network_id, entry_id);
