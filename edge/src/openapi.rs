//! `GET /v1/openapi.json`: an OpenAPI 3.1 description of exactly what this edge serves. The
//! request and response bodies are the JSON Schemas in `schemas/` (the same files requests are
//! validated with); a test checks that `ROUTES` and the served router agree.

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{json, Map, Value};

use crate::routes::events::{
    stream_mode_pattern, LAST_EVENT_ID_PATTERN, POLL_LAST_SEQUENCE, POLL_TIMEOUT_SECS,
};

/// Every operation the edge serves: (method, path, operationId, scope or "" when public).
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    ("get", "/.well-known/openwop", "getCapabilities", ""),
    ("get", "/v1/openapi.json", "getOpenApi", ""),
    (
        "get",
        "/v1/workflows/{workflowId}",
        "getWorkflow",
        "manifest:read",
    ),
    ("post", "/v1/runs", "createRun", "runs:create"),
    ("get", "/v1/runs/{runId}", "getRun", "runs:read"),
    (
        "get",
        "/v1/runs/{runId}/events",
        "streamRunEvents",
        "runs:read",
    ),
    (
        "get",
        "/v1/runs/{runId}/events/poll",
        "pollRunEvents",
        "runs:read",
    ),
    (
        "post",
        "/v1/runs/{runId}/cancel",
        "cancelRun",
        "runs:cancel",
    ),
    (
        "post",
        "/v1/runs/{runId}:cancel",
        "cancelRunColon",
        "runs:cancel",
    ),
];

/// A bundled schema as a component named `name`. Its `$id` goes and its internal
/// `#/$defs/...` references are rewritten to point into the document
/// (`#/components/schemas/<name>/$defs/...`): 2020-12 would resolve them against the `$id`,
/// but OpenAPI tools resolve references against the document, and would miss them.
fn component(name: &str, src: &str) -> Value {
    fn rebase(v: &mut Value, prefix: &str) {
        match v {
            Value::Object(map) => {
                map.remove("$id");
                if let Some(Value::String(r)) = map.get_mut("$ref") {
                    if let Some(rest) = r.strip_prefix("#/") {
                        *r = format!("{prefix}/{rest}");
                    }
                }
                map.values_mut().for_each(|v| rebase(v, prefix));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| rebase(v, prefix)),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_str(src).expect("bundled schema is JSON");
    rebase(&mut v, &format!("#/components/schemas/{name}"));
    v
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorEnvelope" } } } })
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn idempotency_header() -> Value {
    json!({ "name": "Idempotency-Key", "in": "header", "schema": { "type": "string", "pattern": "^[A-Za-z0-9._~:-]{1,255}$" },
            "description": "Repeat with the same request: the stored response again, with openwop-Idempotent-Replay: true. A different request: 409 idempotency_key_mismatch." })
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.split_once('}')).map(|(name, _)| name))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect()
}

fn operation(path: &str, id: &str, scope: &str) -> Value {
    let mut op = Map::new();
    op.insert("operationId".into(), json!(id));
    let params = path_params(path);
    let mut extra_params: Vec<Value> = Vec::new();
    let mut responses = Map::new();
    match id {
        "getCapabilities" => {
            op.insert(
                "summary".into(),
                json!("Capability discovery document (cacheable; ETag/If-None-Match)"),
            );
            responses.insert(
                "200".into(),
                json_response("Capabilities", json!({ "type": "object" })),
            );
            responses.insert("304".into(), json!({ "description": "Not modified" }));
        }
        "getOpenApi" => {
            op.insert("summary".into(), json!("This document"));
            responses.insert(
                "200".into(),
                json_response("OpenAPI 3.1 document", json!({ "type": "object" })),
            );
        }
        "getWorkflow" => {
            op.insert(
                "summary".into(),
                json!("The current definition of a workflow"),
            );
            responses.insert(
                "200".into(),
                json_response(
                    "Workflow definition",
                    json!({ "$ref": "#/components/schemas/WorkflowDefinition" }),
                ),
            );
            responses.insert("404".into(), error_response("Unknown workflow"));
        }
        "createRun" => {
            op.insert("summary".into(), json!("Start a run"));
            extra_params.push(idempotency_header());
            extra_params.push(json!({ "name": "X-Dedup", "in": "header", "schema": { "enum": ["enforce"] },
                "description": "enforce: 409 run_already_active while an equivalent run (same workspace and scopeId, or same workflow) is active" }));
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RunCreateRequest" } } } }),
            );
            responses.insert(
                "201".into(),
                json_response(
                    "Run accepted",
                    json!({ "type": "object", "required": ["runId", "status", "eventsUrl"], "properties": {
                        "runId": { "type": "string" }, "status": { "type": "string" },
                        "eventsUrl": { "type": "string" }, "statusUrl": { "type": "string" } } }),
                ),
            );
            responses.insert(
                "400".into(),
                error_response("Invalid request (validation_error)"),
            );
            responses.insert(
                "413".into(),
                error_response("Body too large (payload_too_large)"),
            );
            responses.insert(
                "409".into(),
                error_response("Idempotency-Key reused with another request (idempotency_key_mismatch), still in flight (idempotency_in_flight), or X-Dedup found an active run (run_already_active)"),
            );
        }
        "getRun" => {
            op.insert(
                "summary".into(),
                json!("Run snapshot (strong ETag; If-None-Match → 304)"),
            );
            responses.insert(
                "200".into(),
                json_response(
                    "Snapshot",
                    json!({ "$ref": "#/components/schemas/RunSnapshot" }),
                ),
            );
            responses.insert("304".into(), json!({ "description": "Not modified" }));
            responses.insert("404".into(), error_response("Unknown run"));
        }
        "streamRunEvents" => {
            op.insert("summary".into(), json!("Server-sent events: backfill after Last-Event-ID, then live; closes after the terminal event"));
            extra_params.push(json!({ "name": "streamMode", "in": "query",
                "description": "Comma-separated stream modes (default updates)",
                "schema": { "type": "string", "pattern": stream_mode_pattern() } }));
            extra_params.push(json!({ "name": "Last-Event-ID", "in": "header",
                "description": "The sequence of the last event the client has; the stream resumes after it",
                "schema": { "type": "string", "pattern": LAST_EVENT_ID_PATTERN } }));
            // One schema per event frame (id = sequence, event = type, data = RunEvent JSON).
            responses.insert(
                "200".into(),
                json!({ "description": "text/event-stream of RunEvent frames; keep-alive comments between them", "content": { "text/event-stream": {
                    "schema": { "type": "object", "required": ["id", "event", "data"], "properties": {
                        "id": { "type": "string", "pattern": "^[0-9]+$" },
                        "event": { "type": "string" },
                        "data": { "type": "string", "contentMediaType": "application/json",
                                  "contentSchema": { "$ref": "#/components/schemas/RunEvent" } } } } } } }),
            );
            responses.insert(
                "400".into(),
                error_response("Unsupported stream mode (unsupported_stream_mode), or a Last-Event-ID that is not a sequence number (validation_error)"),
            );
            responses.insert("404".into(), error_response("Unknown run"));
        }
        "pollRunEvents" => {
            op.insert(
                "summary".into(),
                json!("Long-poll for events after lastSequence (absent or 0: from the start)"),
            );
            let (seq_min, seq_max) = POLL_LAST_SEQUENCE;
            let (timeout_min, timeout_max) = POLL_TIMEOUT_SECS;
            extra_params.push(json!({ "name": "lastSequence", "in": "query", "schema": { "type": "integer", "minimum": seq_min, "maximum": seq_max } }));
            extra_params.push(json!({ "name": "timeout", "in": "query", "schema": { "type": "integer", "minimum": timeout_min, "maximum": timeout_max, "default": 30 } }));
            responses.insert(
                "400".into(),
                error_response(
                    "lastSequence or timeout is not an integer in range (validation_error)",
                ),
            );
            responses.insert(
                "200".into(),
                json_response(
                    "Events",
                    json!({ "type": "object", "required": ["events", "isComplete"], "properties": {
                        "events": { "type": "array", "items": { "$ref": "#/components/schemas/RunEvent" } },
                        "isComplete": { "type": "boolean" } } }),
                ),
            );
            responses.insert("404".into(), error_response("Unknown run"));
        }
        "cancelRun" | "cancelRunColon" => {
            op.insert(
                "summary".into(),
                json!(if id == "cancelRun" {
                    "Cancel a run"
                } else {
                    "Cancel a run (colon spelling)"
                }),
            );
            extra_params.push(idempotency_header());
            op.insert(
                "requestBody".into(),
                json!({ "required": false, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RunCancelRequest" } } } }),
            );
            responses.insert(
                "400".into(),
                error_response("Invalid body or Idempotency-Key (validation_error)"),
            );
            responses.insert(
                "200".into(),
                json_response("Cancellation accepted", json!({ "type": "object", "properties": {
                    "runId": { "type": "string" }, "status": { "enum": ["cancelling", "cancelled"] } } })),
            );
            responses.insert("404".into(), error_response("Unknown run"));
            responses.insert(
                "409".into(),
                error_response("Run already finished (run_terminal), or an Idempotency-Key conflict (idempotency_key_mismatch, idempotency_in_flight)"),
            );
        }
        _ => {}
    }
    responses.insert(
        "503".into(),
        error_response("Too many requests in flight (service_unavailable, Retry-After)"),
    );
    if matches!(id, "streamRunEvents" | "pollRunEvents") {
        responses.insert(
            "429".into(),
            error_response("Too many open streams on this edge (rate_limited, Retry-After)"),
        );
    }
    if !scope.is_empty() {
        responses.entry("429").or_insert_with(|| {
            error_response("The key's request rate is exceeded (rate_limited, Retry-After)")
        });
        op.insert("security".into(), json!([{ "bearer": [scope] }]));
        responses.insert(
            "401".into(),
            error_response("Missing, unknown, expired or revoked key"),
        );
        responses.insert(
            "403".into(),
            error_response("The key lacks the scope (details.scopeRequired)"),
        );
    } else {
        op.insert("security".into(), json!([]));
    }
    let all: Vec<Value> = params.into_iter().chain(extra_params).collect();
    if !all.is_empty() {
        op.insert("parameters".into(), Value::Array(all));
    }
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, id, scope) in ROUTES {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = operation(path, id, scope);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "openwop-pg edge",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The OpenWOP v1 wire surface served by openwop-pg: runs executed inside PostgreSQL."
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "API key (openwop.create_api_key)" } },
            "schemas": {
                "RunCreateRequest": component("RunCreateRequest", crate::validate::RUN_CREATE_SCHEMA),
                "RunCancelRequest": component("RunCancelRequest", crate::validate::RUN_CANCEL_SCHEMA),
                "ErrorEnvelope": component("ErrorEnvelope", include_str!("../../schemas/error-envelope.v1.json")),
                "RunSnapshot": component("RunSnapshot", include_str!("../../schemas/run-snapshot.v1.json")),
                "RunEvent": component("RunEvent", include_str!("../../schemas/run-event.v1.json")),
                "WorkflowDefinition": component("WorkflowDefinition", include_str!("../../schemas/workflow-definition.v1.json")),
            }
        }
    })
}

pub async fn serve() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document().to_string(),
    )
}
