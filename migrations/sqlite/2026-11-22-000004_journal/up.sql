-- The audit journal: every state change appends an entry in the same transaction as the
-- change; an in-order sealer later gives each entry its gapless sequence number and its
-- place in the hash chain (a separate, append-only table, so entries are never updated).
CREATE TABLE journal_entries (
    id TEXT PRIMARY KEY NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks(id),
    recorded_at TIMESTAMP NOT NULL,
    actor TEXT,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX journal_entries_network ON journal_entries(network_id, id);

CREATE TABLE journal_seals (
    entry_id TEXT PRIMARY KEY NOT NULL REFERENCES journal_entries(id),
    network_id TEXT NOT NULL REFERENCES networks(id),
    seq BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    sealed_at TIMESTAMP NOT NULL,
    UNIQUE (network_id, seq)
);

CREATE TABLE checkpoints (
    network_id TEXT NOT NULL REFERENCES networks(id),
    seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    signed_at TIMESTAMP NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (network_id, seq)
);

CREATE TRIGGER journal_entries_no_update BEFORE UPDATE ON journal_entries BEGIN SELECT RAISE(ABORT, 'journal_entries are append-only'); END;
CREATE TRIGGER journal_entries_no_delete BEFORE DELETE ON journal_entries BEGIN SELECT RAISE(ABORT, 'journal_entries are append-only'); END;
CREATE TRIGGER journal_seals_no_update BEFORE UPDATE ON journal_seals BEGIN SELECT RAISE(ABORT, 'journal_seals are append-only'); END;
CREATE TRIGGER journal_seals_no_delete BEFORE DELETE ON journal_seals BEGIN SELECT RAISE(ABORT, 'journal_seals are append-only'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
