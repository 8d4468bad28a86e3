CREATE TABLE contribution_tags_old (
    contribution_id TEXT NOT NULL REFERENCES contributions(id),
    tag TEXT NOT NULL,
    PRIMARY KEY (contribution_id, tag)
);
INSERT INTO contribution_tags_old (contribution_id, tag)
SELECT contribution_id, tag FROM contribution_tags;
DROP TABLE contribution_tags;
ALTER TABLE contribution_tags_old RENAME TO contribution_tags;
CREATE INDEX contribution_tags_tag ON contribution_tags(tag);
