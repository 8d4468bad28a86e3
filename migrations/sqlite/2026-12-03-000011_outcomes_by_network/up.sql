-- Each outcome carries its contribution's network, so a computation reads one network's
-- outcomes from an index on (network_id, contribution_id) instead of every outcome whose
-- contribution id falls in its page's range. Ids are UUIDv7, ordered by time: with networks
-- writing at the same time a page's range holds every network's outcomes of that time, and
-- a preview read them all (in proportion to the number of networks).
-- SQLite cannot add a NOT NULL column without a default, so the table is rebuilt with the
-- same rows; nothing recorded changes. Nothing references this table.
CREATE TABLE contribution_outcomes_new (
    contribution_id TEXT PRIMARY KEY NOT NULL REFERENCES contributions(id),
    status TEXT NOT NULL,
    decided_at TIMESTAMP NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks(id)
);
INSERT INTO contribution_outcomes_new (contribution_id, status, decided_at, network_id)
SELECT o.contribution_id, o.status, o.decided_at, c.network_id
FROM contribution_outcomes AS o JOIN contributions AS c ON c.id = o.contribution_id;
DROP TABLE contribution_outcomes;
ALTER TABLE contribution_outcomes_new RENAME TO contribution_outcomes;
-- Covering: a page's outcomes are read from the index alone.
CREATE INDEX contribution_outcomes_network
    ON contribution_outcomes(network_id, contribution_id, decided_at, status);
CREATE TRIGGER contribution_outcomes_no_update BEFORE UPDATE ON contribution_outcomes
BEGIN SELECT RAISE(ABORT, 'contribution outcomes are append-only'); END;
CREATE TRIGGER contribution_outcomes_no_delete BEFORE DELETE ON contribution_outcomes
BEGIN SELECT RAISE(ABORT, 'contribution outcomes are append-only'); END;
