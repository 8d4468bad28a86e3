-- What a network's committed distributions paid, per bucket and agent: the sum of their
-- lines, kept by each commit in its own transaction (which holds the network's lock). A
-- balanced pool needs these sums for every preview and commit; summing every line ever paid
-- took most of such a preview (520,000 lines after a year of weekly distributions among
-- 10,000 members). Like token_balances, this is a cache of rows that are never edited.
-- paid_totals_state.distributions is how many of the network's distributions the sums
-- cover: they are read only while it equals the network's count, and a commit that finds
-- them behind (distributions committed before this table existed) sums the lines afresh.
CREATE TABLE paid_totals (
    network_id TEXT NOT NULL REFERENCES networks(id),
    bucket TEXT NOT NULL,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    amount_minor TEXT NOT NULL,
    PRIMARY KEY (network_id, bucket, agent_id)
);
CREATE TABLE paid_totals_state (
    network_id TEXT PRIMARY KEY NOT NULL REFERENCES networks(id),
    distributions BIGINT NOT NULL
);
