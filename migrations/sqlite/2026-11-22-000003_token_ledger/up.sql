-- The network token and its double-entry ledger. Entries and transactions are append-only;
-- token_balances is a cache of each account's entries, updated in the same transaction (the
-- ledger check proves they agree).
CREATE TABLE tokens (
    network_id TEXT PRIMARY KEY NOT NULL REFERENCES networks(id),
    symbol TEXT NOT NULL,
    name TEXT NOT NULL,
    decimals INTEGER NOT NULL,
    chain_id BIGINT,
    address TEXT,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE ledger_transactions (
    id TEXT PRIMARY KEY NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks(id),
    kind TEXT NOT NULL,
    cause_type TEXT NOT NULL,
    cause_id TEXT NOT NULL,
    reverses TEXT REFERENCES ledger_transactions(id),
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES agents(id),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (network_id, kind, cause_type, cause_id)
);
CREATE UNIQUE INDEX ledger_transactions_reverses ON ledger_transactions(reverses);
CREATE INDEX ledger_transactions_network ON ledger_transactions(network_id, id);

CREATE TABLE ledger_entries (
    id TEXT PRIMARY KEY NOT NULL,
    transaction_id TEXT NOT NULL REFERENCES ledger_transactions(id),
    network_id TEXT NOT NULL REFERENCES networks(id),
    account TEXT NOT NULL,
    amount_minor TEXT NOT NULL,
    vest_cliff TIMESTAMP,
    vest_end TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX ledger_entries_account ON ledger_entries(network_id, account, id);
CREATE INDEX ledger_entries_tx ON ledger_entries(transaction_id);

CREATE TABLE token_balances (
    network_id TEXT NOT NULL REFERENCES networks(id),
    account TEXT NOT NULL,
    balance_minor TEXT NOT NULL,
    PRIMARY KEY (network_id, account)
);

CREATE TABLE departures (
    network_id TEXT NOT NULL REFERENCES networks(id),
    agent_id TEXT NOT NULL REFERENCES agents(id),
    reason TEXT NOT NULL,
    for_cause BOOLEAN NOT NULL,
    recorded_by TEXT NOT NULL REFERENCES agents(id),
    recorded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (network_id, agent_id)
);

CREATE TRIGGER tokens_no_update BEFORE UPDATE ON tokens BEGIN SELECT RAISE(ABORT, 'tokens are append-only'); END;
CREATE TRIGGER tokens_no_delete BEFORE DELETE ON tokens BEGIN SELECT RAISE(ABORT, 'tokens are append-only'); END;
CREATE TRIGGER ledger_transactions_no_update BEFORE UPDATE ON ledger_transactions BEGIN SELECT RAISE(ABORT, 'ledger_transactions are append-only'); END;
CREATE TRIGGER ledger_transactions_no_delete BEFORE DELETE ON ledger_transactions BEGIN SELECT RAISE(ABORT, 'ledger_transactions are append-only'); END;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries BEGIN SELECT RAISE(ABORT, 'ledger_entries are append-only'); END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries BEGIN SELECT RAISE(ABORT, 'ledger_entries are append-only'); END;
CREATE TRIGGER departures_no_update BEFORE UPDATE ON departures BEGIN SELECT RAISE(ABORT, 'departures are append-only'); END;
CREATE TRIGGER departures_no_delete BEFORE DELETE ON departures BEGIN SELECT RAISE(ABORT, 'departures are append-only'); END;
