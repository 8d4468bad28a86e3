//! Access tokens: issuance and every way a token can be wrong.

mod common;

use base64::Engine as _;
use common::{TestApp, JWT_SECRET};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

on_both_backends!(tokens_are_checked, api_keys_are_checked);

fn sign(claims: &Value, kid: Option<&str>, secret: &str) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

fn claims(sub: &str, offset_exp: i64, offset_nbf: i64, aud: &str, iss: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({ "sub": sub, "iss": iss, "aud": aud, "iat": now, "nbf": now + offset_nbf, "exp": now + offset_exp, "jti": "t" })
}

async fn tokens_are_checked(app: TestApp) {
    let agent = app.agent("Ada").await;
    let me = "/v1/agents/me";
    // The token the service issued works, and so does one the test signs like it.
    app.get(me, Some(&agent.token)).await.ok(200);
    let good = sign(
        &claims(&agent.id, 300, 0, "holoptic-api", "holoptic"),
        Some("k1"),
        JWT_SECRET,
    );
    app.get(me, Some(&good)).await.ok(200);

    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT", "kid": "k1" })),
        b64(&claims(&agent.id, 300, 0, "holoptic-api", "holoptic"))
    );
    let mut tampered = good.clone();
    let (head_payload, sig) = tampered
        .rsplit_once('.')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .expect("jwt");
    let other_payload = b64(&claims(
        &uuid::Uuid::now_v7().to_string(),
        300,
        0,
        "holoptic-api",
        "holoptic",
    ));
    let head = head_payload.split('.').next().expect("header");
    tampered = format!("{head}.{other_payload}.{sig}");

    let bad = [
        (
            "expired",
            sign(
                &claims(&agent.id, -1, -100, "holoptic-api", "holoptic"),
                Some("k1"),
                JWT_SECRET,
            ),
        ),
        (
            "not yet valid",
            sign(
                &claims(&agent.id, 600, 300, "holoptic-api", "holoptic"),
                Some("k1"),
                JWT_SECRET,
            ),
        ),
        (
            "wrong audience",
            sign(
                &claims(&agent.id, 300, 0, "someone-else", "holoptic"),
                Some("k1"),
                JWT_SECRET,
            ),
        ),
        (
            "wrong issuer",
            sign(
                &claims(&agent.id, 300, 0, "holoptic-api", "evil"),
                Some("k1"),
                JWT_SECRET,
            ),
        ),
        (
            "unknown kid",
            sign(
                &claims(&agent.id, 300, 0, "holoptic-api", "holoptic"),
                Some("k9"),
                JWT_SECRET,
            ),
        ),
        (
            "no kid",
            sign(
                &claims(&agent.id, 300, 0, "holoptic-api", "holoptic"),
                None,
                JWT_SECRET,
            ),
        ),
        (
            "wrong key",
            sign(
                &claims(&agent.id, 300, 0, "holoptic-api", "holoptic"),
                Some("k1"),
                "another-secret-that-is-long-enough-000000",
            ),
        ),
        ("alg none", alg_none),
        ("tampered", tampered),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (why, token) in bad {
        let res = app.get(me, Some(&token)).await;
        assert_eq!(res.status.as_u16(), 401, "{why}: {}", res.body);
        res.assert_problem(401, None);
        assert!(res.headers.get("www-authenticate").is_some(), "{why}");
        // A bad token on a write is refused too, and writes nothing.
        app.post(
            "/v1/networks",
            Some(&token),
            json!({ "name": "X", "slug": "from-bad-token" }),
        )
        .await
        .assert_problem(401, None);
    }
    app.get("/v1/networks/from-bad-token", None)
        .await
        .assert_problem(404, None);
    // No token on a write, and a malformed Authorization header.
    app.post(
        "/v1/networks",
        None,
        json!({ "name": "X", "slug": "no-token" }),
    )
    .await
    .assert_problem(401, None);
    let res = app
        .send(
            reqwest::Method::GET,
            me,
            None,
            None,
            &[("authorization", "Basic abc")],
        )
        .await;
    res.assert_problem(401, None);
}

async fn api_keys_are_checked(app: TestApp) {
    app.post("/v1/auth/token", None, json!({ "api_key": "hol_unknown" }))
        .await
        .assert_problem(401, None);
    app.post("/v1/auth/token", None, json!({}))
        .await
        .assert_problem(422, Some("api_key"));
    app.post("/v1/auth/token", None, json!({ "api_key": 5 }))
        .await
        .assert_problem(422, Some("api_key"));
    let agent = app.agent("Bo").await;
    let res = app
        .post("/v1/auth/token", None, json!({ "api_key": agent.key }))
        .await
        .ok(200);
    assert_eq!(res["token_type"], "Bearer");
    assert_eq!(res["expires_in"], 900);
}
