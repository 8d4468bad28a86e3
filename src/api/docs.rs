//! The OpenAPI document's fixed parts (info, security scheme, tags) and the error responses
//! shared by the handlers. Paths and their schemas are collected from [`super::configure`].

use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, Required, Type};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::error::Problem;

/// The document's fixed parts.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Holoptic API",
        description = "Accounting for open value networks: contributions, peer validation, \
                       community-set value equations and exact benefit redistribution. \
                       Every error is an RFC 9457 `application/problem+json` document. Every \
                       POST and PATCH accepts an `Idempotency-Key` header: a retry with the same \
                       key and body replays the first response (header `Idempotent-Replayed: true`), \
                       the same key with another body is a 422, and a retry while the first request \
                       is still running is a 409.",
        license(name = "AGPL-3.0-or-later"),
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem)),
    tags(
        (name = "auth", description = "Access tokens for API keys or Sign-In with Ethereum"),
        (name = "agents", description = "People, organisations and bots"),
        (name = "networks", description = "Open value networks and their settings"),
        (name = "members", description = "Joining, roles and invites"),
        (name = "contributions", description = "Append-only economic events"),
        (name = "validations", description = "Peer approval or rejection of contributions"),
        (name = "equations", description = "Value equations: presets and adopted versions"),
        (name = "governance", description = "Proposals, votes and what-if tables"),
        (name = "distributions", description = "Income, distribution previews, commits, payouts and verification"),
        (name = "shares", description = "Members' value shares"),
        (name = "tokens", description = "The network token: double-entry ledger, balances, transfers, leavers"),
        (name = "exports", description = "Scores for DAO tooling (Snapshot)"),
        (name = "audit", description = "The hash-chained journal, verification and signed checkpoints"),
        (name = "webhooks", description = "Signed event deliveries to stewards' endpoints, retried with backoff"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from POST /v1/auth/token"))
                    .build(),
            ),
        );
    }
}

/// Errors any read may return.
#[derive(IntoResponses)]
#[allow(dead_code)] // documentation only: the variants describe responses, never built
pub enum ReadErrors {
    /// A bearer token was sent but is invalid or expired, or a members-only network was read anonymously.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The caller may not read this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such resource.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// A path or query parameter is invalid; `field` names it.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// The database is unreachable; retry after `Retry-After` seconds.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// Errors any write may return.
#[derive(IntoResponses)]
#[allow(dead_code)] // documentation only: the variants describe responses, never built
pub enum WriteErrors {
    /// The body is not valid JSON.
    #[response(status = 400, content_type = "application/problem+json")]
    BadJson(Problem),
    /// No, invalid or expired bearer token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The caller's role or membership does not allow this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such network or resource.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// Clashes with current state, or the same Idempotency-Key is still in progress.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// The body is larger than the configured limit.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    WrongType(Problem),
    /// A field is missing, unknown, of the wrong type or out of range (`field` names it), or
    /// the Idempotency-Key was used with another body.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// The database is unreachable; retry after `Retry-After` seconds.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// Documents the `Idempotency-Key` header on every POST and PATCH. Runs on the finished
/// document, after the paths have been collected from the registered handlers.
pub fn document_idempotency(spec: &mut utoipa::openapi::OpenApi) {
    let header = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Client-chosen key (1-255 visible ASCII characters) that makes retries safe: the same key \
             and body replay the first response; the same key with another body is a 422; a retry \
             while the first request runs is a 409. Scoped to the caller, method and path.",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(255))))
        .build();
    for item in spec.paths.paths.values_mut() {
        let writes: [&mut Option<Operation>; 2] = [&mut item.post, &mut item.patch];
        for op in writes.into_iter().flatten() {
            op.parameters
                .get_or_insert_with(Vec::new)
                .push(header.clone());
        }
    }
}
