-- Each tag carries its contribution's network, as outcomes do since 000011: a computation
-- reads a page's tags from the network's range of (network_id, contribution_id), not from
-- every network's tags whose contribution id falls in the page's range. SQLite cannot add a
-- NOT NULL column without a default, so the table is rebuilt with the same rows.
CREATE TABLE contribution_tags_new (
    contribution_id TEXT NOT NULL REFERENCES contributions(id),
    tag TEXT NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks(id),
    PRIMARY KEY (contribution_id, tag)
);
INSERT INTO contribution_tags_new (contribution_id, tag, network_id)
SELECT t.contribution_id, t.tag, c.network_id
FROM contribution_tags AS t JOIN contributions AS c ON c.id = t.contribution_id;
DROP TABLE contribution_tags;
ALTER TABLE contribution_tags_new RENAME TO contribution_tags;
CREATE INDEX contribution_tags_tag ON contribution_tags(tag);
CREATE INDEX contribution_tags_network ON contribution_tags(network_id, contribution_id, tag);
