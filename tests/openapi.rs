//! The committed spec is the code's spec, and the served one is the same.

mod common;

#[test]
fn committed_spec_matches_the_code() {
    let generated = holoptic::openapi().to_pretty_json().expect("json");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).expect("openapi/openapi.json is committed");
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

/// utoipa keys schemas by type name: two types with one name silently overwrite each other.
/// These are the names that have clashed, or could.
#[test]
fn schema_names_are_the_types_they_should_be() {
    let spec = serde_json::to_value(holoptic::openapi()).expect("value");
    let schemas = &spec["components"]["schemas"];
    assert_eq!(
        schemas["Claim"]["enum"],
        serde_json::json!(["equity", "debt", "once"])
    );
    assert!(schemas["UniswapClaim"]["properties"]["proof"].is_object());
    assert!(schemas["Policy"]["oneOf"].is_array());
    assert_eq!(schemas["Kind"]["enum"].as_array().map(Vec::len), Some(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_spec_and_docs() {
    let app = common::TestApp::spawn(common::Backend::Sqlite).await;
    let served = app.get("/openapi.json", None).await.ok(200);
    let generated: serde_json::Value = serde_json::to_value(holoptic::openapi()).expect("value");
    assert_eq!(served, generated);
    for path in [
        "/v1/networks/{network}/contributions/batch",
        "/v1/auth/token",
        "/readyz",
    ] {
        assert!(served["paths"].get(path).is_some(), "{path} documented");
    }
    let docs = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .expect("docs");
    assert_eq!(docs.status().as_u16(), 200);
    let html = docs.text().await.expect("html");
    assert!(
        html.contains("swagger-ui"),
        "the docs UI is served by the binary"
    );
    assert!(
        !html.contains("https://unpkg") && !html.contains("cdn."),
        "no CDN assets"
    );
    let js = app
        .client
        .get(format!("{}/docs/swagger-ui-bundle.js", app.base))
        .send()
        .await
        .expect("bundle");
    assert_eq!(js.status().as_u16(), 200);
    let health = app.get("/healthz", None).await.ok(200);
    assert_eq!(health["status"], "ok");
    app.get("/readyz", None).await.ok(200);
    // A routed request is counted under its route's pattern, with the path's values left
    // out, even when its handler refuses it; a path no route matches, as unmatched.
    let refused = app.get("/v1/networks/no-such-network", None).await.status;
    assert!(refused.is_client_error(), "{refused}");
    app.get("/no/such/route", None).await.ok(404);
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics");
    let text = metrics.text().await.expect("text");
    assert!(text.contains("holoptic_http_requests_total"));
    assert!(text.contains("route=\"/readyz\""));
    let counted = |route: &str| {
        text.lines().any(|l| {
            l.starts_with("holoptic_http_requests_total{")
                && l.contains(&format!("route=\"{route}\""))
        })
    };
    assert!(counted("/v1/networks/{network}"), "{text}");
    assert!(counted("unmatched"), "{text}");
    assert!(!text.contains("no-such-network"));
}
