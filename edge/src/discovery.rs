//! `GET /.well-known/openwop`: the capability document. Unauthenticated, cacheable (ETag +
//! If-None-Match → 304), and honest: it advertises only what this host enforces.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::ApiResult;
use crate::state::SharedState;

/// How long a built document is reused before the database is asked again.
const REBUILD_AFTER: Duration = Duration::from_secs(5);
pub const CACHE_CONTROL: &str = "public, max-age=300";

/// A rendered discovery document and its ETag.
pub struct Document {
    pub body: String,
    pub etag: String,
}

#[derive(Default)]
pub struct DiscoveryCache {
    built: Mutex<Option<(Instant, Arc<Document>)>>,
}

/// The v1 discovery document from the engine's facts (`openwop.host_info()`) and the edge's own
/// limits. Only what is enforced is advertised.
pub fn document(host: &Value, config: &Config) -> Value {
    let fact = |k: &str, default: Value| host.get(k).cloned().unwrap_or(default);
    let mut limits = json!({ "clarificationRounds": 3, "schemaRounds": 2, "envelopesPerTurn": 5 });
    if let Some(engine) = host.get("limits").and_then(Value::as_object) {
        for (k, v) in engine {
            limits[k] = v.clone();
        }
    }
    limits["maxRequestBodyBytes"] = json!(config.max_body_bytes);
    json!({
        "protocolVersion": "1.0",
        "protocolVersions": ["1.0"],
        "preferredVersion": "1.0",
        "implementation": { "name": "openwop-pg", "version": env!("CARGO_PKG_VERSION"), "vendor": "openwop-pg" },
        "engineVersion": fact("engineVersion", json!(1)),
        "eventLogSchemaVersion": fact("eventLogSchemaVersion", json!(3)),
        "supportedTransports": ["rest"],
        "supportedEnvelopes": [],
        "schemaVersions": {},
        "limits": limits,
        "configurable": fact("configurable", json!({})),
        "idempotency": fact("idempotency", json!({ "supported": false })),
        "fixtures": fact("fixtures", json!([])),
    })
}

async fn current(state: &SharedState) -> ApiResult<Arc<Document>> {
    if let Ok(guard) = state.discovery.built.lock() {
        if let Some((at, doc)) = guard.as_ref() {
            if at.elapsed() < REBUILD_AFTER {
                return Ok(doc.clone());
            }
        }
    }
    let host = state.db.host_info().await?;
    let body = document(&host, &state.config).to_string();
    let etag = format!(
        "\"{}\"",
        &hex::encode(Sha256::digest(body.as_bytes()))[..32]
    );
    let built = Arc::new(Document { body, etag });
    if let Ok(mut guard) = state.discovery.built.lock() {
        *guard = Some((Instant::now(), built.clone()));
    }
    Ok(built)
}

/// Whether an If-None-Match header value matches `etag` (list and weak forms allowed).
pub fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        })
}

pub async fn well_known(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let doc = current(&state).await?;
    let (body, etag) = (&doc.body, &doc.etag);
    let status = if etag_matches(&headers, etag) {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut resp = if status == StatusCode::OK {
        (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(body.clone()),
        )
            .into_response()
    } else {
        status.into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, OpenWOP-Version"),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        // v1 also names the document's version in Capabilities-Etag (stable while it is).
        h.insert("capabilities-etag", v.clone());
        h.insert(header::ETAG, v);
    }
    Ok(resp)
}
