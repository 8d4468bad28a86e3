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
    amount_minor NUMERIC NOT NULL,
    source TEXT NOT NULL,
    source_ref TEXT NOT NULL,
    paid_at TIMESTAMP NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    recorded_by TEXT NOT NULL REFERENCES agents(id),
    UNIQUE (network_id, source_ref)
);
CREATE INDEX prior_payouts_network ON prior_payouts(network_id, recorded_at);

CREATE TRIGGER member_aliases_append_only BEFORE UPDATE OR DELETE ON member_aliases FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_change();
CREATE TRIGGER prior_payouts_append_only BEFORE UPDATE OR DELETE ON prior_payouts FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_change();
