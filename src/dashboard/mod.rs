//! The web dashboard: one page and its script and style sheet, embedded in the binary. The
//! script reads and writes through the `/v1` API with the session cookie (see
//! `api::auth::create_session`), so the dashboard sees exactly what the API lets the signed-in
//! member see, and every form gets the API's problem+json errors.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

/// Scripts and styles from this origin only, no frames, no plugins; `connect-src 'self'` keeps
/// the page talking to this service alone.
const POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Registers the dashboard's pages (every path the script routes) and assets.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(page))
        .route("/signin", web::get().to(page))
        .route("/n/{tail:.*}", web::get().to(page))
        .route("/assets/app.js", web::get().to(script))
        .route("/assets/app.css", web::get().to(style));
}

fn respond(content_type: &str, body: &'static str, cache: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .body(body)
}

async fn page() -> HttpResponse {
    respond("text/html; charset=utf-8", INDEX, "no-cache")
}

async fn script() -> HttpResponse {
    respond("text/javascript; charset=utf-8", SCRIPT, "no-cache")
}

async fn style() -> HttpResponse {
    respond("text/css; charset=utf-8", STYLE, "no-cache")
}
