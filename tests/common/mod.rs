//! Test harness: each test gets the real server on a free port over its own fresh database
//! (a temporary SQLite file, or a new PostgreSQL database dropped when the test ends).

#![allow(dead_code)] // each test file uses a different part of the harness

use diesel::{Connection as _, PgConnection, RunQueryDsl as _};
use holoptic::{Application, Config};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The secret tests sign their own tokens with.
pub const JWT_SECRET: &str = "test-secret-that-is-long-enough-0123456789";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests create their databases on.
///
/// Loopback connections in tests skip TLS: with it, OpenSSL's clean-up at process exit can
/// race the pool threads of the servers still running in the test process, and the test
/// binary then dies with SIGSEGV after every test has passed (seen once in CI).
pub fn pg_admin_url() -> String {
    let url = std::env::var("HOLOPTIC_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    if url.contains("sslmode=") {
        url
    } else if url.contains('?') {
        format!("{url}&sslmode=disable")
    } else {
        format!("{url}?sslmode=disable")
    }
}

/// A database that removes itself.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres { name: String },
}

impl TestDb {
    /// A fresh, empty database and its URL.
    pub fn create(backend: Backend) -> (Self, String) {
        Self::create_with(backend, "")
    }

    /// Like [`TestDb::create`], with `options` after PostgreSQL's `CREATE DATABASE name`
    /// (a locale, say); SQLite has none.
    pub fn create_with(backend: Backend, options: &str) -> (Self, String) {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                (TestDb::Sqlite(dir), url)
            }
            Backend::Postgres => {
                let name = format!("holoptic_t_{}", uuid::Uuid::now_v7().simple());
                let admin = pg_admin_url();
                let mut conn = PgConnection::establish(&admin)
                    .unwrap_or_else(|e| panic!("PostgreSQL tests need a server at {admin}: {e}"));
                diesel::sql_query(format!("CREATE DATABASE {name} {options}"))
                    .execute(&mut conn)
                    .expect("create database");
                let (without_query, query) = admin.split_once('?').unwrap_or((admin.as_str(), ""));
                let base = without_query
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_owned())
                    .expect("admin url has a database");
                let url = if query.is_empty() {
                    format!("{base}/{name}")
                } else {
                    format!("{base}/{name}?{query}")
                };
                (TestDb::Postgres { name: name.clone() }, url)
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { name } = self {
            if let Ok(mut conn) = PgConnection::establish(&pg_admin_url()) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn);
            }
        }
    }
}

/// A running server and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub database_url: String,
    pub db: TestDb,
}

/// A response: status, headers and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Res {
    /// Whether this is a replay of a stored answer (`Idempotent-Replayed: true`).
    pub fn replayed(&self) -> bool {
        self.headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok())
            == Some("true")
    }

    /// Asserts a problem+json with this status (and field, when given).
    pub fn assert_problem(&self, status: u16, field: Option<&str>) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(
            self.content_type, "application/problem+json",
            "body: {}",
            self.body
        );
        assert_eq!(self.body["status"], json!(status));
        assert!(self.body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:holoptic:problem:")));
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        if let Some(f) = field {
            assert_eq!(self.body["field"], json!(f), "body: {}", self.body);
        }
    }

    /// Asserts this status and returns the body.
    pub fn ok(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }
}

/// A member of a network in a test.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub key: String,
    pub token: String,
}

impl TestApp {
    /// Starts the server on a fresh database of `backend`.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_configured(backend, |_| {}).await
    }

    /// Starts the server on a fresh database of `backend`, with the test defaults changed by
    /// `change`.
    pub async fn spawn_configured(backend: Backend, change: impl FnOnce(&mut Config)) -> Self {
        let (db, database_url) = TestDb::create(backend);
        let mut config = Config::for_database(&database_url);
        config.jwt_secret = Some(JWT_SECRET.into());
        config.db_pool_size = 4;
        config.workers = 2;
        // Journal reads and verification seal on demand; the background sealer has its own test.
        config.seal_interval_ms = 3_600_000;
        change(&mut config);
        Self::spawn_with(backend, db, database_url, config).await
    }

    /// Starts the server with a given configuration.
    pub async fn spawn_with(
        backend: Backend,
        db: TestDb,
        database_url: String,
        config: Config,
    ) -> Self {
        let app = Application::build(config).expect("server builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self {
            base,
            client: reqwest::Client::new(),
            backend,
            database_url,
            db,
        }
    }

    /// Runs raw SQL on the test's database (to move time in tests, or to tamper with rows).
    pub fn sql(&self, query: &str) {
        let url = holoptic::db::DatabaseUrl::parse(&self.database_url).expect("url");
        let mut conn = holoptic::db::conn::establish(&url).expect("connect");
        diesel::sql_query(query)
            .execute(&mut conn)
            .expect("sql runs");
    }

    /// Runs a query whose answer is one integer, in a column named `n`.
    pub fn sql_count(&self, query: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let url = holoptic::db::DatabaseUrl::parse(&self.database_url).expect("url");
        let mut conn = holoptic::db::conn::establish(&url).expect("connect");
        diesel::sql_query(query)
            .get_result::<Count>(&mut conn)
            .expect("sql runs")
            .n
    }

    /// Runs raw SQL and returns the database's answer (for statements that must be refused).
    pub fn try_sql(&self, query: &str) -> Result<usize, String> {
        let url = holoptic::db::DatabaseUrl::parse(&self.database_url).expect("url");
        let mut conn = holoptic::db::conn::establish(&url).expect("connect");
        diesel::sql_query(query)
            .execute(&mut conn)
            .map_err(|e| e.to_string())
    }

    /// Sends a request with optional token, JSON body and extra headers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Res {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::read(req.send().await.expect("request sent")).await
    }

    /// Sends raw bytes with a content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Res {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::read(req.send().await.expect("request sent")).await
    }

    async fn read(res: reqwest::Response) -> Res {
        let status = res.status();
        let headers = res.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = res.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Res {
            status,
            content_type,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Res {
        self.send(Method::GET, path, token, None, &[]).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Res {
        self.send(Method::POST, path, token, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Res {
        self.send(Method::PATCH, path, token, Some(body), &[]).await
    }

    /// Exchanges an API key for a token.
    pub async fn token(&self, key: &str) -> String {
        let body = self
            .post("/v1/auth/token", None, json!({ "api_key": key }))
            .await
            .ok(200);
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// Registers an agent (no network) and signs it in.
    pub async fn agent(&self, name: &str) -> Member {
        let body = self
            .post("/v1/agents", None, json!({ "display_name": name }))
            .await
            .ok(201);
        let key = body["api_key"].as_str().expect("key").to_owned();
        let token = self.token(&key).await;
        Member {
            id: body["agent"]["id"].as_str().expect("id").to_owned(),
            key,
            token,
        }
    }

    /// Creates a network with `extra` settings; returns its steward.
    pub async fn network(&self, slug: &str, extra: Value) -> Member {
        let steward = self.agent(&format!("steward of {slug}")).await;
        let mut body = json!({ "name": format!("Network {slug}"), "slug": slug, "currencies": [{"code": "EUR", "scale": 2}] });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        self.post("/v1/networks", Some(&steward.token), body)
            .await
            .ok(201);
        steward
    }

    /// Joins an open network as a new agent.
    pub async fn join(&self, slug: &str, name: &str) -> Member {
        let body = self
            .post(
                &format!("/v1/networks/{slug}/members"),
                None,
                json!({ "display_name": name }),
            )
            .await
            .ok(201);
        let key = body["api_key"].as_str().expect("key").to_owned();
        let token = self.token(&key).await;
        Member {
            id: body["agent_id"].as_str().expect("id").to_owned(),
            key,
            token,
        }
    }

    /// Sets a member's role (as a steward).
    pub async fn set_role(&self, slug: &str, steward: &Member, member: &Member, role: &str) {
        self.patch(
            &format!("/v1/networks/{slug}/members/{}", member.id),
            Some(&steward.token),
            json!({ "role": role }),
        )
        .await
        .ok(200);
    }

    /// Proposes `body` in network `slug` as `proposer`, and `voters` vote yes; returns the
    /// proposal as the last vote left it.
    pub async fn adopt(
        &self,
        slug: &str,
        proposer: &Member,
        body: Value,
        voters: &[&Member],
    ) -> Value {
        let p = self
            .post(
                &format!("/v1/networks/{slug}/proposals"),
                Some(&proposer.token),
                body,
            )
            .await
            .ok(201);
        let pid = p["id"].as_str().expect("id").to_owned();
        let mut last = p;
        for v in voters {
            last = self
                .post(
                    &format!("/v1/networks/{slug}/proposals/{pid}/votes"),
                    Some(&v.token),
                    json!({ "vote": "yes" }),
                )
                .await
                .ok(201);
        }
        last
    }

    /// Logs `hours` of work as `member`; returns the contribution.
    pub async fn work(&self, slug: &str, member: &Member, hours: &str) -> Value {
        self.post(
            &format!("/v1/networks/{slug}/contributions"),
            Some(&member.token),
            work(hours),
        )
        .await
        .ok(201)
    }

    /// Approves `contribution` as `validator`; returns the validation.
    pub async fn approve(&self, slug: &str, contribution: &Value, validator: &Member) -> Value {
        let id = contribution["id"].as_str().expect("contribution id");
        self.post(
            &format!("/v1/networks/{slug}/contributions/{id}/validations"),
            Some(&validator.token),
            json!({ "decision": "approve" }),
        )
        .await
        .ok(201)
    }

    /// Records income of `amount` `currency` in network `slug` as `steward`, then `action`s
    /// it (`preview` or `distribution`); returns that answer.
    pub async fn income_then(
        &self,
        slug: &str,
        steward: &Member,
        amount: &str,
        currency: &str,
        action: &str,
    ) -> Value {
        let income = self
            .post(
                &format!("/v1/networks/{slug}/income"),
                Some(&steward.token),
                json!({ "amount": amount, "currency": currency, "source": "s", "received_at": "2026-01-01T00:00:00Z" }),
            )
            .await
            .ok(201);
        let id = income["id"].as_str().expect("income id");
        let res = self
            .post(
                &format!("/v1/networks/{slug}/income/{id}/{action}"),
                Some(&steward.token),
                json!({}),
            )
            .await;
        res.ok(if action == "preview" { 200 } else { 201 })
    }

    /// Whether a distribution still verifies (anonymous read).
    pub async fn verifies(&self, slug: &str, distribution: &Value) -> Value {
        let id = distribution["id"].as_str().expect("distribution id");
        let v = self
            .get(
                &format!("/v1/networks/{slug}/distributions/{id}/verify"),
                None,
            )
            .await
            .ok(200);
        assert_eq!(v["matches"], true, "{v}");
        v
    }

    /// A counter from `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
    }

    /// How many contributions a network has (as `token`).
    pub async fn count_contributions(&self, slug: &str, token: Option<&str>) -> usize {
        let mut n = 0;
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/networks/{slug}/contributions?limit=200&cursor={c}"),
                None => format!("/v1/networks/{slug}/contributions?limit=200"),
            };
            let page = self.get(&path, token).await.ok(200);
            n += page["items"].as_array().map_or(0, Vec::len);
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return n,
            }
        }
    }
}

/// A valid work contribution body.
pub fn work(hours: &str) -> Value {
    json!({ "kind": "work", "quantity": hours, "unit": "hours", "occurred_at": "2026-01-15T10:00:00Z" })
}

/// Runs each named scenario `async fn name(backend: Backend)` on SQLite and on PostgreSQL,
/// for scenarios that build their own server or pool.
#[macro_export]
macro_rules! for_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            }
        )*
    };
}

/// Runs each named scenario `async fn name(app: TestApp)` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::TestApp::spawn($crate::common::Backend::Sqlite).await).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::TestApp::spawn($crate::common::Backend::Postgres).await).await;
                }
            }
        )*
    };
}
