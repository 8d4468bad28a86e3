//! Sign-In with Ethereum: the `siwe` package's own message and signature, then messages signed
//! here with the public Hardhat test key, each rule broken once.

mod common;

use common::{Backend, TestApp};
use holoptic::domain::siwe::eip191_hash;
use k256::ecdsa::SigningKey;
use serde_json::{json, Value};

/// Hardhat's first test account (public): 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266.
const HARDHAT_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const HARDHAT_ADDRESS: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
/// Hardhat's second test account.
const OTHER_KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const OTHER_ADDRESS: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    scenario(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    scenario(Backend::Postgres).await;
}

fn sign(key_hex: &str, message: &str) -> String {
    let key = SigningKey::from_slice(&hex::decode(key_hex).expect("hex")).expect("key");
    let (sig, recid) = key
        .sign_prehash_recoverable(&eip191_hash(message.as_bytes()))
        .expect("signs");
    format!(
        "0x{}{:02x}",
        hex::encode(sig.to_bytes()),
        27 + recid.to_byte()
    )
}

struct Msg<'a> {
    domain: &'a str,
    address: &'a str,
    chain: u64,
    nonce: &'a str,
    issued_at: String,
    expiration: Option<String>,
    not_before: Option<String>,
}

impl Msg<'_> {
    fn text(&self) -> String {
        let mut m = format!(
            "{} wants you to sign in with your Ethereum account:\n{}\n\nSign in to Holoptic\n\nURI: https://{}/\nVersion: 1\nChain ID: {}\nNonce: {}\nIssued At: {}",
            self.domain, self.address, self.domain, self.chain, self.nonce, self.issued_at
        );
        if let Some(e) = &self.expiration {
            m.push_str(&format!("\nExpiration Time: {e}"));
        }
        if let Some(n) = &self.not_before {
            m.push_str(&format!("\nNot Before: {n}"));
        }
        m
    }
}

fn at(offset_secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(offset_secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn nonce(app: &TestApp) -> String {
    let n = app
        .post("/v1/auth/siwe/nonce", None, json!({}))
        .await
        .ok(201);
    assert_eq!(n["domain"], "example.com");
    assert_eq!(n["chain_ids"], json!([1, 10]));
    n["nonce"].as_str().expect("nonce").to_owned()
}

async fn login(app: &TestApp, message: &str, signature: &str) -> common::Res {
    app.post(
        "/v1/auth/siwe",
        None,
        json!({ "message": message, "signature": signature }),
    )
    .await
}

async fn scenario(backend: Backend) {
    let app = TestApp::spawn_configured(backend, |c| {
        c.siwe_domain = Some("example.com".into());
        c.siwe_chain_ids = "1,10".into();
    })
    .await;
    let wallet_owner = app
        .post(
            "/v1/agents",
            None,
            json!({ "display_name": "Hardhat", "wallet_address": HARDHAT_ADDRESS.to_lowercase() }),
        )
        .await
        .ok(201);
    let owner_id = wallet_owner["agent"]["id"].as_str().expect("id").to_owned();

    // 1. The siwe package's own message and signature (its nonce, issued in 2021, is put in
    // the store as if this service had issued it then).
    let vector: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/vectors/siwe-eip4361.json"
        ))
        .expect("vector"),
    )
    .expect("json");
    app.sql("INSERT INTO siwe_nonces (nonce, created_at, expires_at) VALUES ('32891756', '2021-09-30 16:25:00', '2100-01-01 00:00:00')");
    let (vm, vs) = (
        vector["message"].as_str().expect("message"),
        vector["signature"].as_str().expect("signature"),
    );
    let token = login(&app, vm, vs).await.ok(200);
    assert_eq!(token["token_type"], "Bearer");
    let me = app
        .get("/v1/agents/me", token["access_token"].as_str())
        .await
        .ok(200);
    assert_eq!(me["id"], owner_id.as_str());
    // Single use.
    login(&app, vm, vs).await.assert_problem(401, None);

    // 2. A fresh nonce and a message signed here.
    let good = |nonce: &str| {
        Msg {
            domain: "example.com",
            address: HARDHAT_ADDRESS,
            chain: 10,
            nonce,
            issued_at: at(0),
            expiration: Some(at(300)),
            not_before: None,
        }
        .text()
    };
    let n = nonce(&app).await;
    let m = good(&n);
    let token = login(&app, &m, &sign(HARDHAT_KEY, &m)).await.ok(200);
    let me = app
        .get("/v1/agents/me", token["access_token"].as_str())
        .await
        .ok(200);
    assert_eq!(me["id"], owner_id.as_str());
    login(&app, &m, &sign(HARDHAT_KEY, &m))
        .await
        .assert_problem(401, None);

    // 3. Each rule broken once, each with a fresh, otherwise valid nonce.
    let n = nonce(&app).await;
    let base = || Msg {
        domain: "example.com",
        address: HARDHAT_ADDRESS,
        chain: 1,
        nonce: "placeholder",
        issued_at: at(0),
        expiration: Some(at(300)),
        not_before: None,
    };
    let cases: Vec<(&str, Msg<'_>)> = vec![
        (
            "wrong domain",
            Msg {
                domain: "evil.example",
                ..base()
            },
        ),
        ("chain not accepted", Msg { chain: 5, ..base() }),
        (
            "expired",
            Msg {
                expiration: Some(at(-10)),
                ..base()
            },
        ),
        (
            "not yet valid",
            Msg {
                not_before: Some(at(3600)),
                ..base()
            },
        ),
        (
            "issued in the future",
            Msg {
                issued_at: at(3600),
                ..base()
            },
        ),
        (
            "unknown nonce",
            Msg {
                nonce: "neverIssued123",
                ..base()
            },
        ),
    ];
    for (why, mut msg) in cases {
        if msg.nonce == "placeholder" {
            msg.nonce = &n;
        }
        let text = msg.text();
        let r = login(&app, &text, &sign(HARDHAT_KEY, &text)).await;
        assert_eq!(r.status.as_u16(), 401, "{why}: {}", r.body);
        r.assert_problem(401, None);
    }
    // None of those spent the nonce: it still signs in.
    let m = Msg {
        nonce: &n,
        ..base()
    }
    .text();
    login(&app, &m, &sign(HARDHAT_KEY, &m)).await.ok(200);

    // A message changed after signing recovers another address.
    let n = nonce(&app).await;
    let m = Msg {
        nonce: &n,
        ..base()
    }
    .text();
    let sig = sign(HARDHAT_KEY, &m);
    let changed = m.replace("Sign in to Holoptic", "Sign in to Holoptic!");
    login(&app, &changed, &sig).await.assert_problem(401, None);
    // Someone else's signature over the message.
    login(&app, &m, &sign(OTHER_KEY, &m))
        .await
        .assert_problem(401, None);
    // A wallet no agent has on record: the nonce is spent anyway.
    let n2 = nonce(&app).await;
    let other = Msg {
        nonce: &n2,
        address: OTHER_ADDRESS,
        ..base()
    }
    .text();
    login(&app, &other, &sign(OTHER_KEY, &other))
        .await
        .assert_problem(401, None);
    let mine = Msg {
        nonce: &n2,
        ..base()
    }
    .text();
    login(&app, &mine, &sign(HARDHAT_KEY, &mine))
        .await
        .assert_problem(401, None);
    // An expired nonce.
    app.sql(&format!(
        "UPDATE siwe_nonces SET expires_at = '2020-01-01 00:00:00' WHERE nonce = '{n}'"
    ));
    login(&app, &m, &sig).await.assert_problem(401, None);

    // Malformed input names its field.
    login(&app, "hello", &sig)
        .await
        .assert_problem(422, Some("message"));
    login(&app, &m, "0x1234")
        .await
        .assert_problem(422, Some("signature"));
    app.post("/v1/auth/siwe", None, json!({ "message": m }))
        .await
        .assert_problem(422, Some("signature"));
}
