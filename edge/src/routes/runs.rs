//! Runs: create (`POST /v1/runs`), read (`GET /v1/runs/{runId}`) and cancel
//! (`POST /v1/runs/{runId}/cancel`, also spelled `POST /v1/runs/{runId}:cancel`).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::auth::Caller;
use crate::db::parse_run_id;
use crate::discovery::etag_matches;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use crate::validate::{check, JsonBody};

/// Caller fields copied verbatim into the run's options (echoed on the snapshot and run.started).
const ECHOED: &[&str] = &["configurable", "tags", "metadata", "scopeId", "callbackUrl"];

pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    caller.require("runs:create")?;
    if !body.is_object() {
        return Err(ApiError::validation(
            "the request body must be a JSON object",
            "body",
        ));
    }
    check(&state.schemas.run_create, &body)?;
    let workflow_id = body["workflowId"].as_str().unwrap_or_default();
    let inputs = body.get("inputs").cloned().unwrap_or_else(|| json!({}));
    let mut options = Map::new();
    options.insert("transport".into(), json!("rest"));
    for key in ECHOED {
        if let Some(v) = body.get(*key) {
            options.insert((*key).into(), v.clone());
        }
    }
    let mut owner = Map::new();
    owner.insert("principal".into(), json!(caller.principal()));
    if let Some(ws) = body.get("tenantId") {
        owner.insert("workspace".into(), ws.clone());
    }
    options.insert("owner".into(), Value::Object(owner));

    let run_id = state
        .db
        .start_run(
            &caller.tenant,
            workflow_id,
            &inputs,
            &Value::Object(options),
        )
        .await?;
    tracing::info!(run_id = %run_id, tenant = %caller.tenant, workflow_id, "run created");
    let base = super::public_base(&state, &headers);
    let status_url = format!("{base}/v1/runs/{run_id}");
    let body = json!({
        "runId": run_id,
        "status": "pending",
        "eventsUrl": format!("{status_url}/events"),
        "statusUrl": status_url,
    });
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&status_url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    headers: HeaderMap,
    run: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    caller.require("runs:read")?;
    let id = parse_run_id(&super::path_param(run)?)?;
    let snapshot = state.db.run(&caller.tenant, id).await?;
    // The snapshot changes exactly when an event is appended or the status moves.
    let etag = format!(
        "\"{}-{}\"",
        snapshot
            .get("lastSequence")
            .and_then(Value::as_i64)
            .unwrap_or(-1),
        snapshot.get("status").and_then(Value::as_str).unwrap_or("")
    );
    let mut resp = if etag_matches(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Json(snapshot).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

pub async fn cancel(
    State(state): State<SharedState>,
    caller: Caller,
    run: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    cancel_run(&state, &caller, &super::path_param(run)?, body).await
}

/// `POST /v1/runs/{runId}:<action>`: the colon spelling of run actions.
pub async fn action(
    State(state): State<SharedState>,
    caller: Caller,
    target: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let target = super::path_param(target)?;
    match target.rsplit_once(':') {
        Some((run, "cancel")) => cancel_run(&state, &caller, run, body).await,
        _ => Err(crate::method_not_allowed_error()),
    }
}

async fn cancel_run(
    state: &SharedState,
    caller: &Caller,
    raw_id: &str,
    body: Value,
) -> ApiResult<Response> {
    caller.require("runs:cancel")?;
    let id = parse_run_id(raw_id)?;
    let body = if body.is_null() { json!({}) } else { body };
    check(&state.schemas.run_cancel, &body)?;
    let reason = body.get("reason").and_then(Value::as_str);
    let status = state
        .db
        .cancel_run(&caller.tenant, id, reason, &caller.principal())
        .await?;
    tracing::info!(run_id = %id, tenant = %caller.tenant, status = %status, "run cancel requested");
    Ok(Json(json!({ "runId": id, "status": status })).into_response())
}
