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

CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_change();
CREATE TRIGGER journal_seals_append_only BEFORE UPDATE OR DELETE ON journal_seals FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints FOR EACH ROW EXECUTE FUNCTION holoptic_refuse_change();
