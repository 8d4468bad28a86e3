//! The dashboard's server side: browser sessions in an HttpOnly cookie, CSRF tokens on every
//! write made with one, the embedded pages and their security headers, and the list of a
//! member's validations that the member page shows. The pages themselves are driven in
//! Chromium by `.ci/dashboard/dashboard.mjs`.

mod common;

use common::{work, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

on_both_backends!(
    a_session_cookie_reads_and_writes_with_its_csrf_token,
    session_requests_are_checked,
    a_bad_or_ended_session_is_anonymous_for_reads_and_refused_for_writes,
    members_only_networks_need_a_members_session,
    the_dashboard_is_served_from_the_binary_with_a_strict_policy,
    a_members_validations_of_others_are_listed,
);

/// Opens a session with an API key; returns the cookie (`name=value`), the CSRF token and
/// the raw `Set-Cookie` header.
async fn session(app: &TestApp, key: &str) -> (String, String, String) {
    let res = app
        .post("/v1/auth/session", None, json!({ "api_key": key }))
        .await;
    let set = res
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session sets a cookie")
        .to_owned();
    let body = res.ok(201);
    let cookie = set.split(';').next().expect("name=value").to_owned();
    (
        cookie,
        body["csrf_token"].as_str().expect("csrf").to_owned(),
        set,
    )
}

async fn with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> common::Res {
    let mut headers = vec![("cookie", cookie)];
    if let Some(c) = csrf {
        headers.push(("x-csrf-token", c));
    }
    app.send(method, path, None, body, &headers).await
}

async fn a_session_cookie_reads_and_writes_with_its_csrf_token(app: TestApp) {
    let ada = app.network("lab", json!({})).await;
    let (cookie, csrf, set) = session(&app, &ada.key).await;
    assert!(cookie.starts_with("holoptic_session="));
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/",
        "Max-Age=28800",
    ] {
        assert!(set.contains(attribute), "{attribute} missing from {set}");
    }

    let me = with_cookie(&app, Method::GET, "/v1/agents/me", &cookie, None, None)
        .await
        .ok(200);
    assert_eq!(me["id"], json!(ada.id));
    let again = with_cookie(&app, Method::GET, "/v1/auth/session", &cookie, None, None)
        .await
        .ok(200);
    assert_eq!(again["csrf_token"], json!(csrf));
    assert_eq!(again["agent_id"], json!(ada.id));

    // A write with the cookie alone is what a cross-site form could send: refused.
    let path = "/v1/networks/lab/contributions";
    with_cookie(&app, Method::POST, path, &cookie, None, Some(work("1")))
        .await
        .assert_problem(403, None);
    let wrong = "00".repeat(32);
    with_cookie(
        &app,
        Method::POST,
        path,
        &cookie,
        Some(&wrong),
        Some(work("1")),
    )
    .await
    .assert_problem(403, None);
    // Another session's token does not fit this one.
    let (_, other_csrf, _) = session(&app, &ada.key).await;
    assert_ne!(other_csrf, csrf);
    with_cookie(
        &app,
        Method::POST,
        path,
        &cookie,
        Some(&other_csrf),
        Some(work("1")),
    )
    .await
    .assert_problem(403, None);
    assert_eq!(app.count_contributions("lab", None).await, 0);

    let made = with_cookie(
        &app,
        Method::POST,
        path,
        &cookie,
        Some(&csrf),
        Some(work("1")),
    )
    .await
    .ok(201);
    assert_eq!(made["recorded_by"], json!(ada.id));
    assert_eq!(app.count_contributions("lab", None).await, 1);

    // Signing out removes the cookie.
    let out = with_cookie(
        &app,
        Method::DELETE,
        "/v1/auth/session",
        &cookie,
        None,
        None,
    )
    .await;
    assert_eq!(out.status.as_u16(), 204);
    let removal = out
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        removal.starts_with("holoptic_session=;") && removal.contains("Max-Age=0"),
        "{removal}"
    );
}

async fn session_requests_are_checked(app: TestApp) {
    let ada = app.network("lab", json!({})).await;
    app.post("/v1/auth/session", None, json!({}))
        .await
        .assert_problem(422, Some("api_key"));
    app.post(
        "/v1/auth/session",
        None,
        json!({ "api_key": ada.key, "message": "x", "signature": "0x00" }),
    )
    .await
    .assert_problem(422, Some("api_key"));
    app.post("/v1/auth/session", None, json!({ "message": "x" }))
        .await
        .assert_problem(422, Some("signature"));
    app.post("/v1/auth/session", None, json!({ "api_key": "hol_nope" }))
        .await
        .assert_problem(401, None);
    app.post(
        "/v1/auth/session",
        None,
        json!({ "api_key": ada.key, "extra": 1 }),
    )
    .await
    .assert_problem(422, Some("extra"));
    let res = app
        .post(
            "/v1/auth/session",
            None,
            json!({ "message": "not an EIP-4361 message", "signature": "0x00" }),
        )
        .await;
    assert!(res.status.is_client_error(), "{:?}", res.body);
    assert!(res.headers.get("set-cookie").is_none());
    app.get("/v1/auth/session", None)
        .await
        .assert_problem(401, None);
}

async fn a_bad_or_ended_session_is_anonymous_for_reads_and_refused_for_writes(app: TestApp) {
    app.network("lab", json!({})).await;
    let forged = "holoptic_session=eyJhbGciOiJIUzI1NiJ9.e30.x";
    // Reads: anonymous, so public data stays readable.
    with_cookie(&app, Method::GET, "/v1/networks/lab", forged, None, None)
        .await
        .ok(200);
    with_cookie(&app, Method::GET, "/v1/agents/me", forged, None, None)
        .await
        .assert_problem(401, None);
    with_cookie(&app, Method::GET, "/v1/auth/session", forged, None, None)
        .await
        .assert_problem(401, None);
    // Writes: refused, never anonymous.
    with_cookie(
        &app,
        Method::POST,
        "/v1/networks/lab/contributions",
        forged,
        Some("00"),
        Some(work("1")),
    )
    .await
    .assert_problem(401, None);
    // A bearer token wins over a cookie.
    let grace = app.join("lab", "Grace").await;
    let me = app
        .send(
            Method::GET,
            "/v1/agents/me",
            Some(&grace.token),
            None,
            &[("cookie", forged)],
        )
        .await
        .ok(200);
    assert_eq!(me["id"], json!(grace.id));
}

async fn members_only_networks_need_a_members_session(app: TestApp) {
    let ada = app.network("lab", json!({ "visibility": "members" })).await;
    let outsider = app.agent("Eve").await;
    let (member_cookie, _, _) = session(&app, &ada.key).await;
    let (outsider_cookie, _, _) = session(&app, &outsider.key).await;
    with_cookie(
        &app,
        Method::GET,
        "/v1/networks/lab/members",
        &member_cookie,
        None,
        None,
    )
    .await
    .ok(200);
    let refused = with_cookie(
        &app,
        Method::GET,
        "/v1/networks/lab",
        &outsider_cookie,
        None,
        None,
    )
    .await;
    assert!(
        matches!(refused.status.as_u16(), 403 | 404),
        "{:?}",
        refused.body
    );
    app.get("/v1/networks/lab", None)
        .await
        .assert_problem(401, None);
}

async fn the_dashboard_is_served_from_the_binary_with_a_strict_policy(app: TestApp) {
    for path in [
        "/",
        "/signin",
        "/n/lab",
        "/n/lab/shares",
        "/n/lab/members/x",
    ] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status().as_u16(), 200, "{path}");
        let headers = res.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        let policy = headers["content-security-policy"].to_str().expect("ascii");
        assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let html = res.text().await.expect("body");
        assert!(html.contains(r#"<script type="module" src="/assets/app.js">"#));
        // Nothing is fetched from elsewhere: no CDN, no fonts, no analytics.
        assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    }
    for (path, kind) in [
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
    ] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(res.headers()["content-type"], kind);
        let text = res.text().await.expect("body");
        assert!(!text.contains("fetch('http") && !text.contains("url(http"));
    }
    // The API keeps its own 404s.
    app.get("/v1/nothing-here", None)
        .await
        .assert_problem(404, None);
}

async fn a_members_validations_of_others_are_listed(app: TestApp) {
    let ada = app.network("lab", json!({})).await;
    let grace = app.join("lab", "Grace").await;
    let c1 = app.work("lab", &ada, "2").await;
    let c2 = app.work("lab", &ada, "3").await;
    app.approve("lab", &c1, &grace).await;
    app.approve("lab", &c2, &grace).await;
    // The same agent validating in another network is not listed here.
    let bob = app.network("other", json!({})).await;
    let grace_there = app
        .post("/v1/networks/other/members", Some(&grace.token), json!({}))
        .await
        .ok(201);
    assert_eq!(grace_there["agent_id"], json!(grace.id));
    let c3 = app.work("other", &bob, "1").await;
    app.approve("other", &c3, &grace).await;

    let path = format!("/v1/networks/lab/members/{}/validations", grace.id);
    let first = app.get(&format!("{path}?limit=1"), None).await.ok(200);
    assert_eq!(first["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(first["items"][0]["contribution_id"], c1["id"]);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = app
        .get(&format!("{path}?limit=1&cursor={cursor}"), None)
        .await
        .ok(200);
    assert_eq!(second["items"][0]["contribution_id"], c2["id"]);
    assert_eq!(second["items"][0]["decision"], json!("approve"));
    assert!(second["next_cursor"].is_null());
    let none = app
        .get(
            &format!("/v1/networks/lab/members/{}/validations", ada.id),
            None,
        )
        .await
        .ok(200);
    assert_eq!(none["items"], json!([]));
    app.get("/v1/networks/lab/members/not-a-uuid/validations", None)
        .await
        .assert_problem(422, Some("agent_id"));
}
