CREATE TABLE contribution_outcomes_old (
    contribution_id TEXT PRIMARY KEY NOT NULL REFERENCES contributions(id),
    status TEXT NOT NULL,
    decided_at TIMESTAMP NOT NULL
);
INSERT INTO contribution_outcomes_old (contribution_id, status, decided_at)
SELECT contribution_id, status, decided_at FROM contribution_outcomes;
DROP TABLE contribution_outcomes;
ALTER TABLE contribution_outcomes_old RENAME TO contribution_outcomes;
CREATE TRIGGER contribution_outcomes_no_update BEFORE UPDATE ON contribution_outcomes
BEGIN SELECT RAISE(ABORT, 'contribution outcomes are append-only'); END;
CREATE TRIGGER contribution_outcomes_no_delete BEFORE DELETE ON contribution_outcomes
BEGIN SELECT RAISE(ABORT, 'contribution outcomes are append-only'); END;
