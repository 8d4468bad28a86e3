-- Each tag carries its contribution's network, as outcomes do since 000011: a computation
-- reads a page's tags from the network's range of (network_id, contribution_id), not from
-- every network's tags whose contribution id falls in the page's range.
ALTER TABLE contribution_tags ADD COLUMN network_id TEXT REFERENCES networks(id);
UPDATE contribution_tags AS t SET network_id = c.network_id
FROM contributions AS c WHERE c.id = t.contribution_id;
ALTER TABLE contribution_tags ALTER COLUMN network_id SET NOT NULL;
CREATE INDEX contribution_tags_network
    ON contribution_tags(network_id, contribution_id) INCLUDE (tag);
