-- Sign-In with Ethereum nonces: issued by the service, used once, then kept until they expire.
CREATE TABLE siwe_nonces (
    nonce TEXT PRIMARY KEY NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX siwe_nonces_expiry ON siwe_nonces(expires_at);

-- Webhook endpoints a network's stewards registered, and each event's delivery to each of them.
-- Deliveries are queued in the transaction of the change they announce (an outbox).
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks(id),
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES agents(id),
    created_at TIMESTAMP NOT NULL,
    active BOOLEAN NOT NULL
);
CREATE INDEX webhooks_network ON webhooks(network_id, id);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id),
    network_id TEXT NOT NULL REFERENCES networks(id),
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    last_attempt_at TIMESTAMP,
    last_status_code INTEGER,
    last_error TEXT,
    delivered_at TIMESTAMP
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook_id, id);
