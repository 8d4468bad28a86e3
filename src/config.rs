//! Configuration, from flags or environment variables (flags win). Secrets are never logged:
//! `Debug` redacts them.

use std::time::Duration;

use clap::Args;

/// Everything `holoptic serve` needs. The README has the same table.
#[derive(Clone, Args)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "HOLOPTIC_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// `sqlite://path` (embedded, the default) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://holoptic.db")]
    pub database_url: String,
    /// HS256 secret for access tokens (at least 32 bytes). Unset: a random one per process,
    /// so tokens die with the process and several instances cannot share them.
    #[arg(long, env = "HOLOPTIC_JWT_SECRET")]
    pub jwt_secret: Option<String>,
    /// Key id (`kid`) put in new tokens' headers.
    #[arg(long, env = "HOLOPTIC_JWT_KID", default_value = "k1")]
    pub jwt_kid: String,
    /// Older keys still accepted while tokens signed with them expire: `kid=secret,kid=secret`.
    #[arg(long, env = "HOLOPTIC_JWT_PREVIOUS_KEYS")]
    pub jwt_previous_keys: Option<String>,
    /// `iss` claim of issued tokens, checked on every request.
    #[arg(long, env = "HOLOPTIC_JWT_ISSUER", default_value = "holoptic")]
    pub jwt_issuer: String,
    /// `aud` claim of issued tokens, checked on every request.
    #[arg(long, env = "HOLOPTIC_JWT_AUDIENCE", default_value = "holoptic-api")]
    pub jwt_audience: String,
    /// Lifetime of an access token, in seconds (60 to 86400).
    #[arg(long, env = "HOLOPTIC_TOKEN_TTL_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(u32).range(60..=86400))]
    pub token_ttl_secs: u32,
    /// Lifetime of a dashboard session (its cookie), in seconds (60 to 604800).
    #[arg(long, env = "HOLOPTIC_SESSION_TTL_SECS", default_value_t = 28800,
          value_parser = clap::value_parser!(u32).range(60..=604_800))]
    pub session_ttl_secs: u32,
    /// Whether the session cookie is marked `Secure` (browsers still send it to
    /// http://localhost); turn off only to serve the dashboard over plain HTTP on another host.
    #[arg(long, env = "HOLOPTIC_COOKIE_SECURE", default_value_t = true, action = clap::ArgAction::Set)]
    pub cookie_secure: bool,
    /// Largest request body, in bytes.
    #[arg(long, env = "HOLOPTIC_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most database connections.
    #[arg(long, env = "HOLOPTIC_DB_POOL_SIZE", default_value_t = 10)]
    pub db_pool_size: u32,
    /// How long a request waits for a database connection before a 503, in milliseconds.
    #[arg(long, env = "HOLOPTIC_DB_TIMEOUT_MS", default_value_t = 3000)]
    pub db_timeout_ms: u64,
    /// Whether contribution, validation and transfer writes are committed in groups by one
    /// writer thread (one transaction for the writes that arrive while the last group
    /// commits), instead of one transaction each on a pooled connection: `auto` (on SQLite
    /// only), `on` or `off`.
    #[arg(long, env = "HOLOPTIC_GROUP_COMMIT", value_enum, default_value_t = GroupCommit::Auto)]
    pub group_commit: GroupCommit,
    /// HTTP worker threads (0: one per core).
    #[arg(long, env = "HOLOPTIC_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// Ed25519 key (base64 of a 32-byte seed) that signs journal checkpoints. Unset: a random
    /// key per process.
    #[arg(long, env = "HOLOPTIC_SIGNING_KEY")]
    pub signing_key: Option<String>,
    /// Key id published with the checkpoint public key.
    #[arg(long, env = "HOLOPTIC_SIGNING_KEY_ID", default_value = "s1")]
    pub signing_key_id: String,
    /// How often the journal sealer runs, in milliseconds.
    #[arg(long, env = "HOLOPTIC_SEAL_INTERVAL_MS", default_value_t = 250)]
    pub seal_interval_ms: u64,
    /// Requests per second allowed from one client address (bursts of twice that); 0: no
    /// limit.
    #[arg(long, env = "HOLOPTIC_RATE_LIMIT_PER_IP", default_value_t = 20_000)]
    pub rate_limit_per_ip: u32,
    /// Requests per second allowed for one authenticated agent (bursts of twice that); 0: no
    /// limit.
    #[arg(long, env = "HOLOPTIC_RATE_LIMIT_PER_AGENT", default_value_t = 5_000)]
    pub rate_limit_per_agent: u32,
    /// Seconds after which a key whose write was applied but whose answer was never stored is
    /// taken to belong to a request whose process died: a retry is refused ("response lost")
    /// rather than applied again.
    #[arg(long, env = "HOLOPTIC_IDEMPOTENCY_STALE_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idempotency_stale_secs: u64,
    /// Domain (host[:port]) that Sign-In with Ethereum messages must name. Unset: the
    /// request's own `Host`.
    #[arg(long, env = "HOLOPTIC_SIWE_DOMAIN")]
    pub siwe_domain: Option<String>,
    /// EIP-155 chain ids accepted in Sign-In with Ethereum messages, comma-separated.
    #[arg(long, env = "HOLOPTIC_SIWE_CHAIN_IDS", default_value = "1")]
    pub siwe_chain_ids: String,
    /// Accept `http://` webhook URLs (for local development and tests; HTTPS otherwise).
    #[arg(long, env = "HOLOPTIC_WEBHOOK_ALLOW_HTTP", default_value_t = false)]
    pub webhook_allow_http: bool,
    /// Delay before the first webhook retry, in milliseconds; each retry doubles it (capped
    /// at one hour).
    #[arg(long, env = "HOLOPTIC_WEBHOOK_RETRY_BASE_MS", default_value_t = 30_000)]
    pub webhook_retry_base_ms: u64,
    /// Attempts before a webhook delivery is given up as failed.
    #[arg(long, env = "HOLOPTIC_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub webhook_max_attempts: u32,
    /// How often the webhook sender looks for due deliveries, in milliseconds.
    #[arg(long, env = "HOLOPTIC_WEBHOOK_POLL_MS", default_value_t = 1000)]
    pub webhook_poll_ms: u64,
    /// Log format: `text` or `json`.
    #[arg(long, env = "HOLOPTIC_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &Option<String>| if s.is_some() { "<redacted>" } else { "<unset>" };
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("database_url", &"<redacted>")
            .field("jwt_secret", &redacted(&self.jwt_secret))
            .field("jwt_kid", &self.jwt_kid)
            .field("jwt_previous_keys", &redacted(&self.jwt_previous_keys))
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("cookie_secure", &self.cookie_secure)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("db_pool_size", &self.db_pool_size)
            .field("db_timeout_ms", &self.db_timeout_ms)
            .field("group_commit", &self.group_commit)
            .field("workers", &self.workers)
            .field("signing_key", &redacted(&self.signing_key))
            .field("signing_key_id", &self.signing_key_id)
            .field("seal_interval_ms", &self.seal_interval_ms)
            .field("rate_limit_per_ip", &self.rate_limit_per_ip)
            .field("rate_limit_per_agent", &self.rate_limit_per_agent)
            .field("idempotency_stale_secs", &self.idempotency_stale_secs)
            .field("siwe_domain", &self.siwe_domain)
            .field("siwe_chain_ids", &self.siwe_chain_ids)
            .field("webhook_allow_http", &self.webhook_allow_http)
            .field("webhook_retry_base_ms", &self.webhook_retry_base_ms)
            .field("webhook_max_attempts", &self.webhook_max_attempts)
            .field("webhook_poll_ms", &self.webhook_poll_ms)
            .finish()
    }
}

/// When writes are committed in groups (`HOLOPTIC_GROUP_COMMIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupCommit {
    /// On SQLite, whose writes take turns anyway; off on PostgreSQL, where one writer's
    /// statements, run one after another, measured slower than a pool's in parallel
    /// (BENCHMARKS.md).
    Auto,
    /// On whatever the backend.
    On,
    /// Off: each write commits on its own pooled connection.
    Off,
}

impl GroupCommit {
    /// Whether writes are grouped on `backend`.
    pub fn enabled_for(self, backend: crate::db::BackendKind) -> bool {
        match self {
            GroupCommit::Auto => backend == crate::db::BackendKind::Sqlite,
            GroupCommit::On => true,
            GroupCommit::Off => false,
        }
    }
}

impl Config {
    /// The defaults, on `database_url`, listening on a free loopback port (tests, tools).
    pub fn for_database(database_url: &str) -> Self {
        Self {
            bind: "127.0.0.1:0".into(),
            database_url: database_url.into(),
            jwt_secret: None,
            jwt_kid: "k1".into(),
            jwt_previous_keys: None,
            jwt_issuer: "holoptic".into(),
            jwt_audience: "holoptic-api".into(),
            token_ttl_secs: 900,
            session_ttl_secs: 28800,
            cookie_secure: true,
            max_body_bytes: 4 * 1024 * 1024,
            db_pool_size: 10,
            db_timeout_ms: 3000,
            group_commit: GroupCommit::Auto,
            workers: 2,
            signing_key: None,
            signing_key_id: "s1".into(),
            seal_interval_ms: 250,
            rate_limit_per_ip: 20_000,
            rate_limit_per_agent: 5_000,
            idempotency_stale_secs: 300,
            siwe_domain: None,
            siwe_chain_ids: "1".into(),
            webhook_allow_http: true,
            webhook_retry_base_ms: 200,
            webhook_max_attempts: 4,
            webhook_poll_ms: 100,
            log_format: "text".into(),
        }
    }

    /// The chain ids accepted for Sign-In with Ethereum.
    pub fn siwe_chains(&self) -> Result<Vec<u64>, String> {
        self.siwe_chain_ids
            .split(',')
            .map(|c| {
                c.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("HOLOPTIC_SIWE_CHAIN_IDS: '{c}' is not a chain id"))
            })
            .collect()
    }

    /// How long a request waits for a connection.
    pub fn db_timeout(&self) -> Duration {
        Duration::from_millis(self.db_timeout_ms)
    }
}
