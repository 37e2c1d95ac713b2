//! Runs: create (`POST /v1/runs`), read (`GET /v1/runs/{runId}`) and cancel
//! (`POST /v1/runs/{runId}/cancel`, also spelled `POST /v1/runs/{runId}:cancel`).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
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
    let key = idempotency_key(&headers)?;
    let dedup = dedup(&headers)?;
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
    if let Some(ws) = caller.workspace_for(body.get("tenantId").and_then(Value::as_str))? {
        owner.insert("workspace".into(), json!(ws));
    }
    options.insert("owner".into(), Value::Object(owner));

    let outcome = state
        .db
        .create_run(
            &caller.tenant,
            workflow_id,
            &inputs,
            &Value::Object(options),
            key.as_deref(),
            dedup,
        )
        .await?;
    let run_id = outcome
        .body
        .get("runId")
        .and_then(Value::as_str)
        .map(str::to_string);
    if outcome.status != 201 || run_id.is_none() {
        return Ok(protocol_response(
            outcome.status,
            outcome.body,
            outcome.replayed,
        ));
    }
    let run_id = run_id.unwrap_or_default();
    tracing::info!(run_id = %run_id, tenant = %caller.tenant, workflow_id, replayed = outcome.replayed, "run created");
    let base = super::public_base(&state, &headers);
    let status_url = format!("{base}/v1/runs/{run_id}");
    let mut body = outcome.body;
    body["eventsUrl"] = json!(format!("{status_url}/events"));
    body["statusUrl"] = json!(status_url);
    let mut resp = protocol_response(201, body, outcome.replayed);
    if let Ok(v) = HeaderValue::from_str(&status_url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// A response the database computed (possibly the replay of a stored one).
fn protocol_response(status: u16, body: Value, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, Json(body)).into_response();
    if replayed {
        resp.headers_mut().insert(
            "openwop-idempotent-replay",
            HeaderValue::from_static("true"),
        );
    }
    resp
}

/// The `Idempotency-Key` header, if any (its grammar is checked by the database).
fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim().to_string())).map_err(|_| {
            ApiError::validation("Idempotency-Key must be plain text", "Idempotency-Key")
        }),
    }
}

/// `X-Dedup: enforce` asks for run_already_active while an equivalent run is active.
fn dedup(headers: &HeaderMap) -> ApiResult<bool> {
    match headers
        .get("x-dedup")
        .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase())
    {
        None => Ok(false),
        Some(v) if v == "enforce" => Ok(true),
        Some(v) => Err(ApiError::validation(
            format!("X-Dedup must be `enforce`, got {v:?}"),
            "X-Dedup",
        )),
    }
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
    headers: HeaderMap,
    run: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    cancel_run(&state, &caller, &headers, &super::path_param(run)?, body).await
}

/// `POST /v1/runs/{runId}:<action>`: the colon spelling of run actions.
pub async fn action(
    State(state): State<SharedState>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    target: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let target = super::path_param(target)?;
    match target.rsplit_once(':') {
        Some((run, "cancel")) => cancel_run(&state, &caller, &headers, run, body).await,
        // methods::enforce answers every other POST here (405 with Allow) before routing.
        _ => Ok(crate::methods::not_allowed(uri.path())),
    }
}

async fn cancel_run(
    state: &SharedState,
    caller: &Caller,
    headers: &HeaderMap,
    raw_id: &str,
    body: Value,
) -> ApiResult<Response> {
    caller.require("runs:cancel")?;
    let key = idempotency_key(headers)?;
    let id = parse_run_id(raw_id)?;
    let body = if body.is_null() { json!({}) } else { body };
    check(&state.schemas.run_cancel, &body)?;
    let reason = body.get("reason").and_then(Value::as_str);
    let outcome = state
        .db
        .cancel_run(
            &caller.tenant,
            id,
            reason,
            &caller.principal(),
            key.as_deref(),
        )
        .await?;
    tracing::info!(run_id = %id, tenant = %caller.tenant, status = outcome.status, replayed = outcome.replayed, "run cancel requested");
    Ok(protocol_response(
        outcome.status,
        outcome.body,
        outcome.replayed,
    ))
}
