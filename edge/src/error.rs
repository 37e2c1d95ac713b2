//! Every error the edge returns, and the one place where database errors become protocol
//! errors. The wire shape is always `{error, message, details?}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds for a `Retry-After` header (429/503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }
    pub fn details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn validation(message: impl Into<String>, field: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", message)
            .details(json!({ "field": field }))
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unauthenticated(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn forbidden_scope(scope: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this API key lacks the {scope} scope"),
        )
        .details(json!({ "scopeRequired": scope }))
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            message,
        )
        .details(json!({ "retryAfter": 1 }));
        e.retry_after = Some(1);
        e
    }
    pub fn internal(correlation_id: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an unexpected error occurred",
        )
        .details(json!({ "correlationId": correlation_id }))
    }

    /// Map a database error. openwop's SQL functions raise SQLSTATE `OW<http status>` with
    /// DETAIL `{"code", "details"}`; connection trouble is a 503; anything else is a bug (500).
    pub fn from_db(err: &tokio_postgres::Error) -> Self {
        if let Some(db) = err.as_db_error() {
            let state = db.code().code();
            if let Some(status) = state.strip_prefix("OW").and_then(|s| s.parse::<u16>().ok()) {
                let detail: Value = db
                    .detail()
                    .and_then(|d| serde_json::from_str(d).ok())
                    .unwrap_or(Value::Null);
                let code = detail
                    .get("code")
                    .and_then(Value::as_str)
                    .unwrap_or("internal_error");
                let mut e = ApiError::new(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    code,
                    db.message(),
                );
                if let Some(d) = detail.get("details").filter(|d| d.is_object()) {
                    // A retry hint in the details is also the Retry-After header.
                    e.retry_after = d.get("retryAfter").and_then(Value::as_u64);
                    e.details = Some(d.clone());
                }
                return e;
            }
            // Text PostgreSQL cannot store (U+0000, bytes that are not UTF-8): the caller's
            // input, not a fault. The body and path checks catch it first; this is the net.
            if state == "22P05" || state == "22021" {
                return ApiError::validation(
                    format!(
                        "the request holds text PostgreSQL cannot store: {}",
                        db.message()
                    ),
                    "body",
                );
            }
            // Shutdown, crash recovery, too many connections, serialization trouble: retry later.
            if state.starts_with("57")
                || state.starts_with("08")
                || state == "53300"
                || state == "40001"
                || state == "40P01"
            {
                return ApiError::unavailable("the database is temporarily unavailable");
            }
        } else if err.is_closed() || is_io(err) || err.to_string().starts_with("error connecting") {
            return ApiError::unavailable("the database connection was lost");
        }
        let id = uuid::Uuid::new_v4().to_string();
        tracing::error!(correlation_id = %id, error = %err, "database error");
        ApiError::internal(&id)
    }

    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("error".into(), json!(self.code));
        m.insert("message".into(), json!(self.message));
        if let Some(d) = &self.details {
            m.insert("details".into(), d.clone());
        }
        Value::Object(m)
    }
}

/// Whether an error comes from the network (connection refused, reset, ...).
fn is_io(err: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(db) => ApiError::from_db(&db),
            other => {
                tracing::warn!(error = %other, "no database connection available");
                ApiError::unavailable("no database connection is available right now")
            }
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        ApiError::from_db(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), error_code = %self.code, "request failed");
        } else {
            tracing::info!(status = self.status.as_u16(), error_code = %self.code, "request refused");
        }
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"openwop\""),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
