-- Each outcome carries its contribution's network, so a computation reads one network's
-- outcomes from an index on (network_id, contribution_id) instead of every outcome whose
-- contribution id falls in its page's range. Ids are UUIDv7, ordered by time: with networks
-- writing at the same time a page's range holds every network's outcomes of that time, and
-- a preview's merge join walked them all (in proportion to the number of networks).
-- The column is filled from the contributions: nothing recorded changes, so the
-- append-only trigger is held off for this statement only.
ALTER TABLE contribution_outcomes ADD COLUMN network_id TEXT REFERENCES networks(id);
ALTER TABLE contribution_outcomes DISABLE TRIGGER contribution_outcomes_append_only;
UPDATE contribution_outcomes AS o SET network_id = c.network_id
FROM contributions AS c WHERE c.id = o.contribution_id;
ALTER TABLE contribution_outcomes ENABLE TRIGGER contribution_outcomes_append_only;
ALTER TABLE contribution_outcomes ALTER COLUMN network_id SET NOT NULL;
CREATE INDEX contribution_outcomes_network
    ON contribution_outcomes(network_id, contribution_id) INCLUDE (decided_at, status);
