//! Bearer API-key authentication and per-endpoint scopes. Keys are looked up by hash in the
//! database (`openwop.authenticate`); results are reused for a few seconds so a busy client
//! costs no extra round trip per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::KeyRow;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;

const CACHE_CAP: usize = 10_000;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: String,
    pub key_id: Uuid,
    pub scopes: Vec<String>,
    /// The workspace the key is bound to, if any.
    pub workspace: Option<String>,
}

impl Caller {
    /// Refuse with 403 unless the key carries `scope` (scopes never imply one another).
    pub fn require(&self, scope: &str) -> ApiResult<()> {
        if self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden_scope(scope))
        }
    }

    /// The workspace a new run belongs to, from the key and the request's `tenantId`: a key
    /// bound to a workspace decides it (a different one is forbidden); otherwise `tenantId`
    /// names a workspace of the caller's tenant, or the tenant itself (no workspace).
    pub fn workspace_for(&self, requested: Option<&str>) -> ApiResult<Option<String>> {
        match (&self.workspace, requested) {
            (Some(bound), None) => Ok(Some(bound.clone())),
            (Some(bound), Some(r)) if r == bound || r == self.tenant => Ok(Some(bound.clone())),
            (Some(bound), Some(_)) => Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                format!("this API key may only start runs in workspace {bound:?}"),
            )
            .details(serde_json::json!({ "field": "tenantId" }))),
            (None, Some(r)) if r == self.tenant => Ok(None),
            (None, r) => Ok(r.map(str::to_string)),
        }
    }

    /// An opaque principal for logs and `cancelledBy`: the key id, never the secret.
    pub fn principal(&self) -> String {
        format!("key:{}", self.key_id)
    }
}

/// When a token was looked up, and what it resolved to (None: unknown token).
type CachedLookup = (Instant, Option<KeyRow>);

pub struct AuthCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], CachedLookup>>,
}

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        AuthCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &[u8; 32]) -> Option<Option<KeyRow>> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, row)| row.clone())
    }

    fn put(&self, key: [u8; 32], row: Option<KeyRow>) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_CAP {
                entries.clear();
            }
            entries.insert(key, (Instant::now(), row));
        }
    }
}

fn bearer(parts: &Parts) -> ApiResult<&str> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthenticated(
            "unauthenticated",
            "an Authorization: Bearer <api key> header is required",
        )
    })?;
    let value = value.to_str().map_err(|_| {
        ApiError::unauthenticated(
            "unauthenticated",
            "the Authorization header is not valid text",
        )
    })?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::unauthenticated(
            "unauthenticated",
            "the Authorization header must be `Bearer <api key>`",
        ));
    }
    Ok(token)
}

impl FromRequestParts<SharedState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let row = match state.auth.get(&digest) {
            Some(row) => row,
            None => {
                let row = state.db.authenticate(token).await?;
                state.auth.put(digest, row.clone());
                row
            }
        };
        let row = row.ok_or_else(|| {
            ApiError::unauthenticated("unauthenticated", "the API key is not valid")
        })?;
        match row.state.as_str() {
            "ok" => {}
            "revoked" => {
                return Err(ApiError::unauthenticated(
                    "key_revoked",
                    "the API key has been revoked",
                ))
            }
            "expired" => {
                return Err(ApiError::unauthenticated(
                    "key_expired",
                    "the API key has expired",
                ))
            }
            other => {
                return Err(ApiError::unauthenticated(
                    "unauthenticated",
                    format!("the API key is {other}"),
                ))
            }
        }
        tracing::Span::current().record("tenant", row.tenant.as_str());
        // Rate limits come before scopes: a throttled key learns nothing about its scopes.
        state.admission.charge(row.key_id)?;
        Ok(Caller {
            tenant: row.tenant,
            key_id: row.key_id,
            scopes: row.scopes,
            workspace: row.workspace,
        })
    }
}
