//! `edge`: the stateless HTTP front of openwop-pg. It authenticates callers, validates
//! requests, calls `openwop.*` SQL functions and streams events; the engine itself runs
//! inside PostgreSQL.
//!
//! Layout: `routes/` (one file per resource), `discovery.rs` and `openapi.rs` (public
//! documents), `auth.rs` (API keys, scopes), `validate.rs` (bodies and JSON Schemas),
//! `db.rs` (the only place SQL is issued), `listen.rs` (the LISTEN fan-out), `error.rs`
//! (the error envelope and the database-error mapping), `config.rs`, `state.rs`.

pub mod admission;
pub mod auth;
pub mod config;
pub mod db;
pub mod discovery;
pub mod error;
pub mod listen;
pub mod malformed;
pub mod methods;
pub mod openapi;
/// The engine's event catalog and run statuses: the very file the extension compiles.
#[path = "../../pgext/src/protocol.rs"]
pub mod protocol;
pub mod routes;
pub mod state;
pub mod validate;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use tracing::Instrument;

use crate::error::ApiError;
use crate::state::SharedState;

/// The protocol version every response names.
pub const PROTOCOL_VERSION: &str = "1.0";

/// The edge's router. `main` serves it; tests serve it on port 0.
pub fn app(state: SharedState) -> Router {
    Router::new()
        .route("/.well-known/openwop", get(discovery::well_known))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/workflows/{workflow_id}", get(routes::workflows::get))
        .route("/v1/runs", post(routes::runs::create))
        .route(
            "/v1/runs/{run}",
            get(routes::runs::get).post(routes::runs::action),
        )
        .route("/v1/runs/{run}/events", get(routes::events::stream))
        .route("/v1/runs/{run}/events/poll", get(routes::events::poll))
        .route("/v1/runs/{run}/cancel", post(routes::runs::cancel))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            admission::admit,
        ))
        .layer(middleware::from_fn(methods::enforce))
        .layer(middleware::from_fn(request_context))
        .with_state(state)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!("no endpoint at {}", req.uri().path()))
        .details(json!({ "route": "unknown" }))
}

async fn method_not_allowed(req: Request) -> Response {
    methods::not_allowed(req.uri().path())
}

/// Per request: a correlation id (the caller's `X-Request-Id` or a fresh one), a tracing span
/// that carries it with method, path, tenant and status, and the protocol version header.
async fn request_context(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.uri().path(),
        tenant = tracing::field::Empty,
        run_id = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let mut resp = async move { next.run(req).await }
        .instrument(span.clone())
        .await;
    let status = resp.status().as_u16();
    let failed = resp.status().is_client_error() || resp.status().is_server_error();
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request done"
        )
    });
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-request-id", v);
    }
    h.insert(
        "openwop-version",
        HeaderValue::from_static(PROTOCOL_VERSION),
    );
    if failed {
        h.entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    resp.into_response()
}
