//! The end-to-end harness: a real PostgreSQL cluster with openwop preloaded (started by
//! `make test`, described by `OPENWOP_TEST_*` variables), the real `edge` binary started as
//! a child process on a free port, and a small HTTP/SSE client. Each test makes its own tenant
//! and API key, so tests run in parallel without seeing each other's runs.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Where the cluster and the edge binary are (set by `tests/support/test.sh`).
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// A superuser connection, for setting tests up.
    pub database_url: String,
    /// What the edge connects with: a service role, subject to row-level security.
    pub edge_database_url: String,
    pub edge_bin: PathBuf,
    pub pgdata: String,
    pub pgport: String,
    pub cluster_script: String,
}

impl TestEnv {
    pub fn from_env() -> TestEnv {
        let var = |k: &str| {
            std::env::var(k).unwrap_or_else(|_| {
                panic!("{k} is not set: run the end-to-end tests through `make test`, which starts the cluster")
            })
        };
        TestEnv {
            database_url: var("OPENWOP_TEST_DATABASE_URL"),
            edge_database_url: var("OPENWOP_TEST_EDGE_DATABASE_URL"),
            edge_bin: PathBuf::from(var("OPENWOP_EDGE_BIN")),
            pgdata: var("OPENWOP_TEST_PGDATA"),
            pgport: var("OPENWOP_TEST_PGPORT"),
            cluster_script: var("OPENWOP_TEST_CLUSTER_SCRIPT"),
        }
    }

    /// Run `cluster.sh <data> <port> <command>` (e.g. "restart").
    pub fn cluster(&self, command: &str) {
        let status = Command::new(&self.cluster_script)
            .args([&self.pgdata, &self.pgport, command])
            .status()
            .expect("run cluster.sh");
        assert!(status.success(), "cluster.sh {command} failed");
    }
}

/// A direct SQL connection to the test database.
pub async fn sql(env: &TestEnv) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&env.database_url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test cluster");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Connect, retrying while the cluster restarts or recovers from a crash.
pub async fn sql_retry(env: &TestEnv, within: Duration) -> tokio_postgres::Client {
    let deadline = Instant::now() + within;
    loop {
        if let Ok((client, conn)) =
            tokio_postgres::connect(&env.database_url, tokio_postgres::NoTls).await
        {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            if client.simple_query("SELECT 1").await.is_ok() {
                return client;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not come back within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A tenant with the fixtures seeded and an API key.
pub struct Tenant {
    pub id: String,
    pub key: String,
}

pub async fn new_tenant(db: &tokio_postgres::Client, scopes: Option<&[&str]>) -> Tenant {
    let id = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    db.execute("SELECT openwop.create_tenant($1)", &[&id])
        .await
        .unwrap();
    db.execute("SELECT count(*) FROM openwop.seed_fixtures($1)", &[&id])
        .await
        .unwrap();
    let key: String = match scopes {
        None => db
            .query_one("SELECT openwop.create_api_key($1, 'e2e')", &[&id])
            .await
            .unwrap()
            .get(0),
        Some(s) => {
            let s: Vec<String> = s.iter().map(|x| x.to_string()).collect();
            db.query_one("SELECT openwop.create_api_key($1, 'e2e', $2)", &[&id, &s])
                .await
                .unwrap()
                .get(0)
        }
    };
    Tenant { id, key }
}

/// What most tests start from: the cluster, a SQL connection, a fresh tenant with the
/// fixtures and a key, an edge, and a client holding that key.
pub struct Ctx {
    pub env: TestEnv,
    pub db: tokio_postgres::Client,
    pub tenant: Tenant,
    pub edge: Edge,
    pub api: Api,
}

pub async fn setup() -> Ctx {
    setup_with(&[]).await
}

/// `setup`, with extra environment for the edge (e.g. a smaller body limit).
pub async fn setup_with(edge_env: &[(&str, &str)]) -> Ctx {
    let env = TestEnv::from_env();
    let db = sql(&env).await;
    let tenant = new_tenant(&db, None).await;
    let edge = Edge::start_with(&env, edge_env).await;
    let api = edge.api(&tenant.key);
    Ctx {
        env,
        db,
        tenant,
        edge,
        api,
    }
}

/// Start a run from SQL, as an application would, and return its id.
pub async fn start_from_sql(
    db: &impl tokio_postgres::GenericClient,
    tenant: &str,
    workflow: &str,
) -> uuid::Uuid {
    db.query_one(
        "SELECT openwop.start_run($1, '{}', '{}', $2)",
        &[&workflow, &tenant],
    )
    .await
    .expect("start_run")
    .get(0)
}

/// The edge binary, running as a child process on a free loopback port. The process lives
/// as long as the `Edge` or any `Api` made from it.
pub struct Edge {
    process: Arc<EdgeProcess>,
    pub base: String,
}

struct EdgeProcess(std::sync::Mutex<Child>);

impl Drop for EdgeProcess {
    fn drop(&mut self) {
        if let Ok(mut child) = self.0.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Edge {
    pub async fn start(env: &TestEnv) -> Edge {
        Edge::start_with(env, &[]).await
    }

    pub async fn start_with(env: &TestEnv, extra_env: &[(&str, &str)]) -> Edge {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(&env.edge_bin);
        cmd.env("OPENWOP_DATABASE_URL", &env.edge_database_url)
            .env("OPENWOP_LISTEN", format!("127.0.0.1:{port}"))
            // Tests poll hard; the rate limit has its own test, which sets it.
            .env("OPENWOP_RATE_LIMIT", "0")
            .env(
                "OPENWOP_LOG",
                std::env::var("OPENWOP_TEST_EDGE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start the edge binary");
        let edge = Edge {
            process: Arc::new(EdgeProcess(std::sync::Mutex::new(child))),
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http
                .get(format!("{}/.well-known/openwop", edge.base))
                .send()
                .await
            {
                if r.status().is_success() {
                    return edge;
                }
            }
            assert!(Instant::now() < deadline, "the edge did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn api(&self, key: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: self.base.clone(),
            key: Some(key.to_string()),
            _edge: Some(self.process.clone()),
        }
    }

    pub fn anonymous(&self) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: self.base.clone(),
            key: None,
            _edge: Some(self.process.clone()),
        }
    }
}

/// One response: status, parsed JSON body (Null when empty or not JSON), headers.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: Option<String>,
    /// Keeps the edge process alive while this client exists.
    _edge: Option<Arc<EdgeProcess>>,
}

/// One server-sent event frame (or comment).
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub comment: Option<String>,
}

impl Frame {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

pub const TERMINAL: [&str; 3] = ["run.completed", "run.failed", "run.cancelled"];

impl Api {
    /// The same client identity on a connection pool of its own (a separate connection).
    pub fn fresh_connection(&self) -> Api {
        Api {
            http: reqwest::Client::new(),
            ..self.clone()
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(k) = &self.key {
            rb = rb.bearer_auth(k);
        }
        rb
    }

    pub async fn send(rb: reqwest::RequestBuilder) -> Reply {
        let resp = rb.send().await.expect("HTTP request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        Api::send(self.request(reqwest::Method::GET, path)).await
    }

    /// POST with extra request headers (Idempotency-Key, X-Dedup, ...).
    pub async fn post_with(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        let mut rb = self.request(reqwest::Method::POST, path).json(&body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        Api::send(rb).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        Api::send(self.request(reqwest::Method::POST, path).json(&body)).await
    }

    /// Start a run and return its id (asserting 201).
    pub async fn start(&self, workflow: &str, inputs: Value) -> String {
        let r = self
            .post(
                "/v1/runs",
                json!({ "workflowId": workflow, "inputs": inputs }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "create run: {:?}", r.body);
        r.body["runId"].as_str().expect("runId").to_string()
    }

    /// Poll the snapshot until the run is terminal.
    pub async fn wait_terminal(&self, run: &str, within: Duration) -> Value {
        self.wait_status(run, &["completed", "failed", "cancelled"], within)
            .await
    }

    /// Poll the snapshot until its status is one of `statuses` (503s while the database
    /// restarts are tolerated).
    pub async fn wait_status(&self, run: &str, statuses: &[&str], within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let r = self.get(&format!("/v1/runs/{run}")).await;
            if r.status == StatusCode::OK
                && statuses.contains(&r.body["status"].as_str().unwrap_or(""))
            {
                return r.body;
            }
            assert!(
                r.status == StatusCode::OK || r.status == StatusCode::SERVICE_UNAVAILABLE,
                "unexpected {} while waiting: {:?}",
                r.status,
                r.body
            );
            assert!(
                Instant::now() < deadline,
                "run {run} not in {statuses:?} within {within:?}; last: {:?}",
                r.body
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Every event of a run, through the poll endpoint.
    pub async fn events(&self, run: &str) -> Vec<Value> {
        let r = self
            .get(&format!("/v1/runs/{run}/events/poll?timeout=1"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "poll: {:?}", r.body);
        r.body["events"].as_array().cloned().unwrap_or_default()
    }

    /// Read an SSE stream until the server closes it (or `within` passes).
    pub async fn sse(
        &self,
        path: &str,
        last_event_id: Option<&str>,
        within: Duration,
    ) -> (StatusCode, Vec<Frame>) {
        let mut rb = self
            .request(reqwest::Method::GET, path)
            .header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            rb = rb.header("Last-Event-ID", id);
        }
        let resp = rb.send().await.expect("SSE request");
        let status = resp.status();
        if !status.is_success() {
            return (status, vec![]);
        }
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        let mut frames = Vec::new();
        let deadline = tokio::time::sleep(within);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                chunk = body.next() => match chunk {
                    Some(Ok(bytes)) => {
                        buf.push_str(&String::from_utf8_lossy(&bytes));
                        while let Some(end) = buf.find("\n\n") {
                            let block: String = buf.drain(..end + 2).collect();
                            frames.push(parse_frame(&block));
                        }
                    }
                    _ => break,
                },
                _ = &mut deadline => panic!("SSE stream {path} still open after {within:?}; got {} frames", frames.len()),
            }
        }
        (status, frames)
    }
}

fn parse_frame(block: &str) -> Frame {
    let mut f = Frame::default();
    for line in block.lines() {
        if let Some(c) = line.strip_prefix(':') {
            f.comment = Some(c.trim().to_string());
        } else if let Some((k, v)) = line.split_once(':') {
            let v = v.strip_prefix(' ').unwrap_or(v);
            match k {
                "id" => f.id = Some(v.to_string()),
                "event" => f.event = Some(v.to_string()),
                "data" => {
                    if !f.data.is_empty() {
                        f.data.push('\n');
                    }
                    f.data.push_str(v);
                }
                _ => {}
            }
        }
    }
    f
}

/// The invariants every finished run's log must hold: sequences 0..n with no gap and no
/// repeat, exactly one terminal event and it is the last, at most one run.started.
pub fn assert_log_invariants(events: &[Value]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e["sequence"].as_i64(),
            Some(i as i64),
            "sequence gap or repeat at {i}: {events:#?}"
        );
        for k in ["eventId", "runId", "type", "payload", "timestamp"] {
            assert!(e.get(k).is_some(), "event {i} lacks {k}");
        }
    }
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        types.iter().filter(|t| TERMINAL.contains(t)).count(),
        1,
        "exactly one terminal event: {types:?}"
    );
    assert!(
        TERMINAL.contains(types.last().unwrap_or(&"")),
        "the terminal event is last: {types:?}"
    );
    assert!(
        types.iter().filter(|t| **t == "run.started").count() <= 1,
        "one run.started: {types:?}"
    );
}

/// The event types of a log, for compact assertions.
pub fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("").to_string())
        .collect()
}
