-- Value equations, governance, income and distributions. Everything here is append-only:
-- status is derived (an outcome row, a payment row), never edited in place.
CREATE TABLE equation_versions (
    network_id TEXT NOT NULL REFERENCES networks(id),
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    effective_from TIMESTAMP NOT NULL,
    adopted_at TIMESTAMP NOT NULL,
    proposal_id TEXT NOT NULL,
    PRIMARY KEY (network_id, version)
);

CREATE TABLE proposals (
    id TEXT PRIMARY KEY NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks(id),
    proposed_by TEXT NOT NULL REFERENCES agents(id),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    preset TEXT,
    body TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    effective_from TIMESTAMP,
    quorum_percent TEXT NOT NULL,
    threshold_percent TEXT NOT NULL,
    fast_track_allowed BOOLEAN NOT NULL,
    eligible_voters INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    voting_ends_at TIMESTAMP NOT NULL
);
CREATE INDEX proposals_network ON proposals(network_id, id);

CREATE TABLE votes (
    proposal_id TEXT NOT NULL REFERENCES proposals(id),
    voter_id TEXT NOT NULL REFERENCES agents(id),
    vote TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (proposal_id, voter_id)
);

CREATE TABLE proposal_outcomes (
    proposal_id TEXT PRIMARY KEY NOT NULL REFERENCES proposals(id),
    status TEXT NOT NULL,
    decided_at TIMESTAMP NOT NULL,
    yes_votes INTEGER NOT NULL,
    no_votes INTEGER NOT NULL,
    abstain_votes INTEGER NOT NULL,
    fast_tracked_by TEXT REFERENCES agents(id),
    version INTEGER
);

CREATE TABLE income_events (
    id TEXT PRIMARY KEY NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks(id),
    amount NUMERIC(28,18) NOT NULL,
    currency TEXT NOT NULL,
    source TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    recorded_by TEXT NOT NULL REFERENCES agents(id),
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX income_events_network ON income_events(network_id, id);

CREATE TABLE distributions (
    id TEXT PRIMARY KEY NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks(id),
    income_event_id TEXT NOT NULL UNIQUE REFERENCES income_events(id),
    equation_version INTEGER NOT NULL,
    equation_hash TEXT NOT NULL,
    cutoff TIMESTAMP NOT NULL,
    inputs_digest TEXT NOT NULL,
    amount_minor NUMERIC NOT NULL,
    currency TEXT NOT NULL,
    scale INTEGER NOT NULL,
    committed_by TEXT NOT NULL REFERENCES agents(id),
    committed_at TIMESTAMP NOT NULL
);
CREATE INDEX distributions_network ON distributions(network_id, id);

CREATE TABLE distribution_lines (
    id TEXT PRIMARY KEY NOT NULL,
    distribution_id TEXT NOT NULL REFERENCES distributions(id),
    line_no INTEGER NOT NULL,
    bucket TEXT NOT NULL,
    agent_id TEXT REFERENCES agents(id),
    account TEXT,
    weight NUMERIC NOT NULL,
    exact_share TEXT NOT NULL,
    amount_minor NUMERIC NOT NULL,
    leftover BOOLEAN NOT NULL,
    UNIQUE (distribution_id, line_no)
);
CREATE INDEX distribution_lines_agent ON distribution_lines(agent_id);

CREATE TABLE distribution_claims (
    distribution_id TEXT NOT NULL REFERENCES distributions(id),
    bucket TEXT NOT NULL,
    contribution_id TEXT NOT NULL REFERENCES contributions(id),
    amount_minor NUMERIC NOT NULL,
    PRIMARY KEY (distribution_id, bucket, contribution_id)
);

CREATE TABLE line_payments (
    line_id TEXT PRIMARY KEY NOT NULL REFERENCES distribution_lines(id),
    reference TEXT NOT NULL,
    paid_at TIMESTAMP NOT NULL,
    marked_by TEXT NOT NULL REFERENCES agents(id)
);

CREATE TRIGGER equation_versions_append_only BEFORE UPDATE OR DELETE ON equation_versions FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_change();
CREATE TRIGGER votes_append_only BEFORE UPDATE OR DELETE ON votes FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_change();
CREATE TRIGGER proposal_outcomes_append_only BEFORE UPDATE OR DELETE ON proposal_outcomes FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_change();
CREATE TRIGGER income_events_append_only BEFORE UPDATE OR DELETE ON income_events FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_change();
CREATE TRIGGER distributions_append_only BEFORE UPDATE OR DELETE ON distributions FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_change();
CREATE TRIGGER distribution_lines_append_only BEFORE UPDATE OR DELETE ON distribution_lines FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_change();
CREATE TRIGGER distribution_claims_append_only BEFORE UPDATE OR DELETE ON distribution_claims FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_change();
CREATE TRIGGER line_payments_append_only BEFORE UPDATE OR DELETE ON line_payments FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_change();
