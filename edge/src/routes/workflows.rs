//! `GET /v1/workflows/{workflowId}`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;

pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("manifest:read")?;
    let id = super::path_param(id)?;
    match state.db.workflow(&caller.tenant, &id).await? {
        Some(def) => Ok(Json(def)),
        None => Err(ApiError::not_found(format!("workflow {id:?} not found"))
            .details(json!({ "workflowId": id }))),
    }
}
