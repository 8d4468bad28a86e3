//! Operations endpoints: liveness, readiness (database reachable) and Prometheus metrics.

use actix_web::{get, web, HttpResponse};
use diesel::RunQueryDsl as _;
use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use crate::error::{ApiError, Problem};

/// Health status.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    #[schema(example = "ok")]
    pub status: String,
}

/// The service's Prometheus metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests by method, route pattern and status.
    pub requests: IntCounterVec,
    /// Request latency by method and route pattern, in seconds.
    pub latency: HistogramVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    shares_reused: IntCounter,
    shares_computed: IntCounter,
    spare_pages: IntCounter,
    db_tasks: IntCounter,
    write_groups: IntCounter,
    grouped_writes: IntCounter,
    gathered_groups: IntCounter,
    gathered_writes: IntCounter,
    gathered_failed: IntCounter,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("holoptic".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method and route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )?;
        let pool_connections = IntGauge::new("db_pool_connections", "Open database connections")?;
        let pool_idle = IntGauge::new("db_pool_idle_connections", "Idle database connections")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        let shares_reused = IntCounter::new(
            "shares_tables_reused_total",
            "Shares reads answered from the table kept for their network",
        )?;
        let shares_computed = IntCounter::new(
            "shares_tables_computed_total",
            "Shares tables computed from every counted contribution",
        )?;
        registry.register(Box::new(pool_idle.clone()))?;
        registry.register(Box::new(shares_reused.clone()))?;
        registry.register(Box::new(shares_computed.clone()))?;
        let spare_pages = IntCounter::new(
            "contribution_pages_read_on_spare_total",
            "Contribution pages a computation read on a second connection and thread",
        )?;
        registry.register(Box::new(spare_pages.clone()))?;
        let db_tasks = IntCounter::new(
            "db_tasks_total",
            "Database tasks run, each a hop to the blocking thread pool and a pooled connection, or to the group writer",
        )?;
        registry.register(Box::new(db_tasks.clone()))?;
        let write_groups = IntCounter::new(
            "db_write_groups_total",
            "Transactions committed by the group writer, each holding one or more writes",
        )?;
        let grouped_writes = IntCounter::new(
            "db_grouped_writes_total",
            "Writes run in the group writer's committed transactions",
        )?;
        registry.register(Box::new(write_groups.clone()))?;
        registry.register(Box::new(grouped_writes.clone()))?;
        let gathered_groups = IntCounter::new(
            "db_gathered_statements_total",
            "Statements that wrote several single contribution writes at once (PostgreSQL)",
        )?;
        let gathered_writes = IntCounter::new(
            "db_gathered_writes_total",
            "Single contribution writes sent in those statements",
        )?;
        let gathered_failed = IntCounter::new(
            "db_gathered_statements_failed_total",
            "Statements of several single writes that failed, whose writes then went alone",
        )?;
        registry.register(Box::new(gathered_groups.clone()))?;
        registry.register(Box::new(gathered_writes.clone()))?;
        registry.register(Box::new(gathered_failed.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            pool_connections,
            pool_idle,
            shares_reused,
            shares_computed,
            spare_pages,
            db_tasks,
            write_groups,
            grouped_writes,
            gathered_groups,
            gathered_writes,
            gathered_failed,
        })
    }
}

/// Liveness: the process answers.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Alive", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the database answers.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database is unreachable", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Health>, ApiError> {
    state
        .db
        .run(|conn| {
            diesel::sql_query("SELECT 1")
                .execute(conn)
                .map_err(ApiError::from)
        })
        .await
        .map_err(|e| match e {
            ApiError::Internal(_) => ApiError::Unavailable,
            other => other,
        })?;
    Ok(web::Json(Health {
        status: "ok".into(),
    }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Metrics", body = String, content_type = "text/plain"))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>, metrics: web::Data<Metrics>) -> HttpResponse {
    let (open, idle) = state.db.pool_state();
    metrics.pool_connections.set(i64::from(open));
    metrics.pool_idle.set(i64::from(idle));
    // The counts are kept elsewhere; the counters follow them (only this handler moves them).
    let follow = |counter: &IntCounter, count: u64| {
        counter.inc_by(count.saturating_sub(counter.get()));
    };
    let (reused, computed) = state.shares.counts();
    follow(&metrics.shares_reused, reused);
    follow(&metrics.shares_computed, computed);
    follow(
        &metrics.spare_pages,
        crate::accounting::pages_read_on_spare(),
    );
    follow(&metrics.db_tasks, state.db.tasks_run());
    let (groups, grouped) = state.db.group_counts();
    follow(&metrics.write_groups, groups);
    follow(&metrics.grouped_writes, grouped);
    let (statements, writes, failed) = state.member_writes.counts();
    follow(&metrics.gathered_groups, statements);
    follow(&metrics.gathered_writes, writes);
    follow(&metrics.gathered_failed, failed);
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&metrics.registry.gather(), &mut buf) {
        return ApiError::Internal(e.to_string()).into();
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(buf)
}

impl From<ApiError> for HttpResponse {
    fn from(e: ApiError) -> Self {
        actix_web::ResponseError::error_response(&e)
    }
}
