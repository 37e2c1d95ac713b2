//! HTTP handlers, one file per resource.

pub mod events;
pub mod runs;
pub mod workflows;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, StatusCode};
use std::collections::HashMap;

use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;

/// A path parameter, with a malformed path answered as an envelope instead of plain text.
pub fn path_param(p: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    p.map(|Path(s)| s).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            format!("bad path: {e}"),
        )
    })
}

/// Query parameters, with a malformed query answered as an envelope.
pub fn query_params(
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<HashMap<String, String>> {
    q.map(|Query(m)| m).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            format!("bad query string: {e}"),
        )
    })
}

/// The base of absolute URLs handed to clients: OPENWOP_PUBLIC_URL, else the request's Host.
pub fn public_base(state: &SharedState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.config.public_url {
        return u.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| state.config.listen.to_string());
    format!("http://{host}")
}
