-- History brought from other tools (SourceCred first): members' aliases there, and what they
-- were paid before the network came to Holoptic. Both are append-only.
CREATE TABLE member_aliases (
    network_id TEXT NOT NULL REFERENCES networks(id),
    source TEXT NOT NULL,
    alias TEXT NOT NULL,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    description TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (network_id, source, alias)
);
CREATE INDEX member_aliases_agent ON member_aliases(network_id, agent_id);

-- Payments made before Holoptic, counted as already paid by the bucket they name (so a
-- balanced policy tops up the underpaid). Amounts in minor units of the currency.
CREATE TABLE prior_payouts (
    id TEXT PRIMARY KEY NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks(id),
    agent_id TEXT NOT NULL REFERENCES agents(id),
    bucket TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor TEXT NOT NULL,
    source TEXT NOT NULL,
    source_ref TEXT NOT NULL,
    paid_at TIMESTAMP NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    recorded_by TEXT NOT NULL REFERENCES agents(id),
    UNIQUE (network_id, source_ref)
);
CREATE INDEX prior_payouts_network ON prior_payouts(network_id, recorded_at);

CREATE TRIGGER member_aliases_no_update BEFORE UPDATE ON member_aliases BEGIN SELECT RAISE(ABORT, 'member_aliases are append-only'); END;
CREATE TRIGGER member_aliases_no_delete BEFORE DELETE ON member_aliases BEGIN SELECT RAISE(ABORT, 'member_aliases are append-only'); END;
CREATE TRIGGER prior_payouts_no_update BEFORE UPDATE ON prior_payouts BEGIN SELECT RAISE(ABORT, 'prior_payouts are append-only'); END;
CREATE TRIGGER prior_payouts_no_delete BEFORE DELETE ON prior_payouts BEGIN SELECT RAISE(ABORT, 'prior_payouts are append-only'); END;
