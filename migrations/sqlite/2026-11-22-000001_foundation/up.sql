-- Foundation schema (SQLite). Ids are UUIDv7 text; decimals are canonical decimal text
-- (never REAL: SQLite's NUMERIC affinity would turn them into floats).
CREATE TABLE networks (
    id TEXT PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    join_policy TEXT NOT NULL,
    visibility TEXT NOT NULL,
    approvals_required INTEGER NOT NULL,
    rejections_required INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE network_currencies (
    network_id TEXT NOT NULL REFERENCES networks(id),
    code TEXT NOT NULL,
    scale INTEGER NOT NULL,
    PRIMARY KEY (network_id, code)
);

CREATE TABLE agents (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    wallet_address TEXT,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE api_keys (
    key_hash TEXT PRIMARY KEY NOT NULL,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX api_keys_agent ON api_keys(agent_id);

CREATE TABLE memberships (
    network_id TEXT NOT NULL REFERENCES networks(id),
    agent_id TEXT NOT NULL REFERENCES agents(id),
    role TEXT NOT NULL,
    joined_at TIMESTAMP NOT NULL,
    PRIMARY KEY (network_id, agent_id)
);
CREATE INDEX memberships_agent ON memberships(agent_id);

CREATE TABLE invites (
    code_hash TEXT PRIMARY KEY NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks(id),
    role TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES agents(id),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_by TEXT REFERENCES agents(id),
    used_at TIMESTAMP
);

CREATE TABLE contributions (
    id TEXT PRIMARY KEY NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks(id),
    agent_id TEXT NOT NULL REFERENCES agents(id),
    recorded_by TEXT NOT NULL REFERENCES agents(id),
    kind TEXT NOT NULL,
    quantity TEXT NOT NULL,
    unit TEXT NOT NULL,
    skill TEXT,
    description TEXT NOT NULL,
    evidence_url TEXT,
    cites TEXT REFERENCES contributions(id),
    corrects TEXT REFERENCES contributions(id),
    occurred_at TIMESTAMP NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX contributions_network ON contributions(network_id, id);
CREATE INDEX contributions_agent ON contributions(network_id, agent_id);
CREATE UNIQUE INDEX contributions_corrects ON contributions(corrects);

CREATE TABLE contribution_tags (
    contribution_id TEXT NOT NULL REFERENCES contributions(id),
    tag TEXT NOT NULL,
    PRIMARY KEY (contribution_id, tag)
);
CREATE INDEX contribution_tags_tag ON contribution_tags(tag);

CREATE TABLE validations (
    id TEXT PRIMARY KEY NOT NULL,
    contribution_id TEXT NOT NULL REFERENCES contributions(id),
    validator_id TEXT NOT NULL REFERENCES agents(id),
    decision TEXT NOT NULL,
    note TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (contribution_id, validator_id)
);

CREATE TABLE contribution_outcomes (
    contribution_id TEXT PRIMARY KEY NOT NULL REFERENCES contributions(id),
    status TEXT NOT NULL,
    decided_at TIMESTAMP NOT NULL
);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    status_code INTEGER,
    content_type TEXT,
    response_body TEXT,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, idem_key)
);

-- Contributions and validations are append-only: the database itself refuses edits.
CREATE TRIGGER contributions_no_update BEFORE UPDATE ON contributions
BEGIN SELECT RAISE(ABORT, 'contributions are append-only'); END;
CREATE TRIGGER contributions_no_delete BEFORE DELETE ON contributions
BEGIN SELECT RAISE(ABORT, 'contributions are append-only'); END;
CREATE TRIGGER validations_no_update BEFORE UPDATE ON validations
BEGIN SELECT RAISE(ABORT, 'validations are append-only'); END;
CREATE TRIGGER validations_no_delete BEFORE DELETE ON validations
BEGIN SELECT RAISE(ABORT, 'validations are append-only'); END;
CREATE TRIGGER contribution_outcomes_no_update BEFORE UPDATE ON contribution_outcomes
BEGIN SELECT RAISE(ABORT, 'contribution outcomes are append-only'); END;
CREATE TRIGGER contribution_outcomes_no_delete BEFORE DELETE ON contribution_outcomes
BEGIN SELECT RAISE(ABORT, 'contribution outcomes are append-only'); END;
