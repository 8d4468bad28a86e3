//! `Application::build(Config)`: migrate, bind (port 0 friendly) and assemble the server.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::dev::{ServiceFactory, ServiceRequest};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};
use utoipa::OpenApi as _;
use utoipa_actix_web::{scope, AppExt as _, UtoipaApp};
use utoipa_swagger_ui::SwaggerUi;

use crate::api::extract::BodyLimit;
use crate::api::health::Metrics;
use crate::api::{self, docs::ApiDoc, middleware, AppState};
use crate::auth::TokenKeys;
use crate::config::Config;
use crate::db::{self, DatabaseUrl, Db, PoolSettings};
use crate::error::ApiError;
use crate::ratelimit::{Limit, RateLimiter};

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
}

/// Opens the pool for `config` (without connecting yet).
pub fn open_db(config: &Config) -> Result<Db, String> {
    let url = DatabaseUrl::parse(&config.database_url)?;
    let settings = PoolSettings {
        max_size: config.db_pool_size.max(1),
        connection_timeout: config.db_timeout(),
        group_commit: config.group_commit.enabled_for(url.kind),
    };
    Db::new(&url, &settings).map_err(|e| e.to_string())
}

/// Runs pending migrations on `db`.
pub fn migrate(db: &Db) -> Result<Vec<String>, String> {
    let mut conn = db.get().map_err(|e| e.to_string())?;
    db::migrate(&mut conn)
}

impl Application {
    /// Migrates the database, binds `config.bind` and builds the server.
    pub fn build(config: Config) -> Result<Self, String> {
        let db = open_db(&config)?;
        let applied = migrate(&db)?;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "applied migrations");
        }
        if config.jwt_secret.is_none() {
            tracing::warn!(
                "HOLOPTIC_JWT_SECRET is not set: using a random secret, so tokens end with this process \
                 and are not shared between instances"
            );
        }
        let keys = Arc::new(TokenKeys::from_config(&config)?);
        let metrics = web::Data::new(Metrics::new().map_err(|e| e.to_string())?);
        if config.signing_key.is_none() {
            tracing::warn!("HOLOPTIC_SIGNING_KEY is not set: checkpoints are signed with a random key per process");
        }
        let signer = Arc::new(crate::journal::CheckpointSigner::new(
            config.signing_key.as_deref(),
            &config.signing_key_id,
        )?);
        // The journal sealer: entries get their place in the hash chain shortly after commit.
        let every = std::time::Duration::from_millis(config.seal_interval_ms.max(10));
        tokio::spawn(crate::journal::sealer(db.clone(), every));
        // Webhook deliveries: sent, signed and retried in the background.
        tokio::spawn(crate::webhooks::sender(
            db.clone(),
            crate::webhooks::SenderSettings::from_config(&config)?,
        ));
        let state = web::Data::new(AppState {
            db,
            keys: keys.clone(),
            signer,
            siwe_domain: config.siwe_domain.clone(),
            siwe_chains: config.siwe_chains()?,
            webhook_allow_http: config.webhook_allow_http,
            session_ttl_secs: i64::from(config.session_ttl_secs),
            cookie_secure: config.cookie_secure,
            idempotency_stale: chrono::Duration::seconds(
                i64::try_from(config.idempotency_stale_secs).unwrap_or(300),
            ),
            shares: Arc::default(),
            network_ids: Arc::default(),
            member_writes: Arc::default(),
        });
        let limit = web::Data::new(BodyLimit(config.max_body_bytes));
        let limiter = web::Data::new(RateLimiter::new(
            Limit::new(
                config.rate_limit_per_ip,
                config.rate_limit_per_ip.saturating_mul(2),
            ),
            Limit::new(
                config.rate_limit_per_agent,
                config.rate_limit_per_agent.saturating_mul(2),
            ),
        ));
        let listener = TcpListener::bind(&config.bind)
            .map_err(|e| format!("cannot bind {}: {e}", config.bind))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let keys_data = web::Data::new(keys);
        let mut server = HttpServer::new(move || {
            let (app, spec) = split(routes(App::new().into_utoipa_app()));
            app.app_data(state.clone())
                .app_data(keys_data.clone())
                .app_data(metrics.clone())
                .app_data(limit.clone())
                .app_data(limiter.clone())
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|e, _| ApiError::field("path", e.to_string()).into()),
                )
                .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", spec))
                .service(web::redirect("/docs", "/docs/"))
                .configure(crate::dashboard::configure)
                .default_service(web::to(|| async {
                    HttpResponse::from(ApiError::NotFound("no such route".into()))
                }))
                .wrap(from_fn(middleware::idempotency))
                .wrap(from_fn(middleware::rate_limit))
                .wrap(from_fn(middleware::observe))
        })
        .client_request_timeout(std::time::Duration::from_secs(10))
        .client_disconnect_timeout(std::time::Duration::from_secs(2))
        .listen(listener)
        .map_err(|e| e.to_string())?;
        if config.workers > 0 {
            server = server.workers(config.workers);
        }
        Ok(Self {
            port,
            server: server.run(),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until stopped (Ctrl-C or SIGTERM).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Registers every documented route: the one place routes and spec entries come from.
fn routes<T>(app: UtoipaApp<T>) -> UtoipaApp<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    app.openapi(ApiDoc::openapi())
        .service(scope::scope("/v1").configure(api::configure))
        .service(api::health::healthz)
        .service(api::health::readyz)
        .service(api::health::metrics)
}

/// Separates the app from its finished OpenAPI document.
fn split<T>(app: UtoipaApp<T>) -> (App<T>, utoipa::openapi::OpenApi)
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    let (app, mut spec) = app.split_for_parts();
    api::docs::document_idempotency(&mut spec);
    (app, spec)
}

/// The OpenAPI document, built from the same registration as the server.
pub fn openapi() -> utoipa::openapi::OpenApi {
    split(routes(App::new().into_utoipa_app())).1
}
