//! Typed calls to the openwop SQL API. The edge runs no other SQL: every statement here is
//! one `openwop.*` function call, one round trip, with a cached prepared statement.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use serde_json::Value;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

/// What a bearer token resolves to.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub tenant: String,
    pub key_id: Uuid,
    pub scopes: Vec<String>,
    /// `ok`, `expired` or `revoked`.
    pub state: String,
    /// The workspace the key is bound to, if any.
    pub workspace: Option<String>,
}

/// A protocol response computed in the database (`openwop.api_*`): status and body, and
/// whether it is the stored response of an earlier request with the same Idempotency-Key.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
    pub replayed: bool,
}

impl ApiResponse {
    fn from_json(v: Value) -> ApiResponse {
        ApiResponse {
            status: v.get("status").and_then(Value::as_u64).unwrap_or(500) as u16,
            replayed: v.get("replayed").and_then(Value::as_bool).unwrap_or(false),
            body: v.get("body").cloned().unwrap_or(Value::Null),
        }
    }
}

/// A page of event documents and the run's status at read time.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub run_status: String,
    pub events: Vec<Value>,
}

impl EventPage {
    pub fn is_terminal(&self) -> bool {
        crate::protocol::is_terminal_status(&self.run_status)
    }
}

pub fn event_seq(doc: &Value) -> i32 {
    doc.get("sequence").and_then(Value::as_i64).unwrap_or(-1) as i32
}

pub fn event_type(doc: &Value) -> &str {
    doc.get("type").and_then(Value::as_str).unwrap_or("")
}

impl Db {
    pub fn connect(url: &str, size: usize, wait: Duration) -> Result<Db, String> {
        let pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| format!("bad OPENWOP_DATABASE_URL: {e}"))?;
        let mgr = Manager::from_config(
            pg,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(wait))
            .create_timeout(Some(wait))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Db { pool })
    }

    async fn client(&self) -> ApiResult<Object> {
        Ok(self.pool.get().await?)
    }

    async fn one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> ApiResult<tokio_postgres::Row> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(sql).await?;
        Ok(c.query_one(&stmt, params).await?)
    }

    /// Whether the database answers and has the extension (for readiness).
    pub async fn ping(&self) -> ApiResult<()> {
        self.one("SELECT openwop.current_tenant()", &[])
            .await
            .map(|_| ())
    }

    pub async fn authenticate(&self, token: &str) -> ApiResult<Option<KeyRow>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT tenant_id, key_id, scopes, state, workspace_id FROM openwop.authenticate($1)")
            .await?;
        let row = c.query_opt(&stmt, &[&token]).await?;
        Ok(row.map(|r| KeyRow {
            tenant: r.get(0),
            key_id: r.get(1),
            scopes: r.get(2),
            state: r.get(3),
            workspace: r.get(4),
        }))
    }

    pub async fn host_info(&self) -> ApiResult<Value> {
        Ok(self.one("SELECT openwop.host_info()", &[]).await?.get(0))
    }

    pub async fn workflow(&self, tenant: &str, id: &str) -> ApiResult<Option<Value>> {
        Ok(self
            .one("SELECT openwop.workflow($1, $2)", &[&id, &tenant])
            .await?
            .get(0))
    }

    /// `openwop.api_create_run`: start a run, honouring an Idempotency-Key and X-Dedup.
    pub async fn create_run(
        &self,
        tenant: &str,
        workflow_id: &str,
        inputs: &Value,
        options: &Value,
        idempotency_key: Option<&str>,
        dedup: bool,
    ) -> ApiResult<ApiResponse> {
        let v: Value = self
            .one(
                "SELECT openwop.api_create_run($1, $2, $3, $4, $5, $6)",
                &[
                    &workflow_id,
                    inputs,
                    options,
                    &tenant,
                    &idempotency_key,
                    &dedup,
                ],
            )
            .await?
            .get(0);
        Ok(ApiResponse::from_json(v))
    }

    pub async fn run(&self, tenant: &str, id: Uuid) -> ApiResult<Value> {
        Ok(self
            .one("SELECT openwop.run($1, $2)", &[&id, &tenant])
            .await?
            .get(0))
    }

    /// `openwop.api_cancel_run`: request cancellation, honouring an Idempotency-Key.
    pub async fn cancel_run(
        &self,
        tenant: &str,
        id: Uuid,
        reason: Option<&str>,
        by: &str,
        idempotency_key: Option<&str>,
    ) -> ApiResult<ApiResponse> {
        let v: Value = self
            .one(
                "SELECT openwop.api_cancel_run($1, $2, $3, $4, $5)",
                &[&id, &reason, &tenant, &by, &idempotency_key],
            )
            .await?
            .get(0);
        Ok(ApiResponse::from_json(v))
    }

    pub async fn event_docs(
        &self,
        tenant: &str,
        id: Uuid,
        after: i32,
        max: i32,
        major: i32,
    ) -> ApiResult<EventPage> {
        let v: Value = self
            .one(
                "SELECT openwop.event_docs($1, $2, $3, $4, $5)",
                &[&id, &after, &max, &major, &tenant],
            )
            .await?
            .get(0);
        let run_status = v
            .get("runStatus")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let events = match v.get("events") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        Ok(EventPage { run_status, events })
    }
}

/// Parse a run id from a path: the canonical hyphenated form only (36 characters; braces,
/// URNs and the bare 32-digit form are other spellings of the same id, and would give one run
/// several URLs). A malformed id cannot name a run: that is a 404, like any unknown run, so
/// the shape of ids leaks nothing.
pub fn parse_run_id(raw: &str) -> ApiResult<Uuid> {
    tracing::Span::current().record("run_id", raw);
    let canonical = (raw.len() == 36)
        .then(|| Uuid::try_parse(raw).ok())
        .flatten();
    canonical.ok_or_else(|| {
        ApiError::not_found(format!("run {raw:?} not found"))
            .details(serde_json::json!({"runId": raw}))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_canonical_only() {
        let id = "0190a0a0-1234-7000-8000-00000000abcd";
        assert_eq!(parse_run_id(id).unwrap().to_string(), id);
        assert!(parse_run_id(&id.to_uppercase()).is_ok());
        for other in [
            "{0190a0a0-1234-7000-8000-00000000abcd}",
            "urn:uuid:0190a0a0-1234-7000-8000-00000000abcd",
            "0190a0a012347000800000000000abcd",
            "0190a0a0-1234-7000-8000-00000000abc",
            "",
        ] {
            assert_eq!(parse_run_id(other).unwrap_err().status, 404, "{other}");
        }
    }
}
