-- Fewer pages written per contribution. Every write's commit appends each page it changed to
-- the write-ahead log, and a single POST changed about a dozen (78 KiB written a request at
-- one connection, bench/analysis.md).
--
-- 1. Only a correction has `corrects`; the unique index held a NULL entry for every other
--    contribution. Every query on it compares `corrects` (=, IN, a range, IS NOT NULL), which
--    implies NOT NULL, so the partial index serves them all, and uniqueness is unchanged
--    (NULLs never collided).
DROP INDEX contributions_corrects;
CREATE UNIQUE INDEX contributions_corrects ON contributions(corrects) WHERE corrects IS NOT NULL;

-- 2. The sealer's queue is read only by network and entry id: one b-tree keyed that way
--    (WITHOUT ROWID) instead of a table, its primary key index and a second index.
CREATE TABLE journal_unsealed_new (
    network_id TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    PRIMARY KEY (network_id, entry_id)
) WITHOUT ROWID;
INSERT INTO journal_unsealed_new (network_id, entry_id)
SELECT network_id, entry_id FROM journal_unsealed;
DROP TABLE journal_unsealed;
ALTER TABLE journal_unsealed_new RENAME TO journal_unsealed;
