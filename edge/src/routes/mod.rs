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

/// An id from the path. One that cannot exist (its percent-encoding is not UTF-8, or it holds
/// U+0000) names nothing: 404, like any unknown id, as an envelope.
pub fn path_param(p: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    match p {
        Ok(Path(id)) if !id.contains('\0') => Ok(id),
        Ok(_) => Err(ApiError::not_found(
            "no resource has an id containing U+0000",
        )),
        Err(e) => Err(ApiError::not_found(format!("no resource has this id: {e}"))),
    }
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
