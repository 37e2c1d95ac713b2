//! Request bodies: read them (size-limited), parse them as JSON, and check them against the
//! JSON Schemas in `schemas/`, the same files the OpenAPI document publishes. Every failure
//! is a protocol error envelope naming the offending field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use jsonschema::error::ValidationErrorKind;
use jsonschema::Validator;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};

#[path = "../../pgext/src/field_path.rs"]
mod field_path;
use crate::state::SharedState;
use field_path::pointer_to_field;

pub const RUN_CREATE_SCHEMA: &str = include_str!("../../schemas/run-create.v1.json");
pub const RUN_CANCEL_SCHEMA: &str = include_str!("../../schemas/run-cancel.v1.json");

pub struct Schemas {
    pub run_create: Validator,
    pub run_cancel: Validator,
}

impl Schemas {
    pub fn load() -> Schemas {
        let compile = |src: &str| {
            let v: Value = serde_json::from_str(src).expect("bundled schema is JSON");
            jsonschema::validator_for(&v).expect("bundled schema compiles")
        };
        Schemas {
            run_create: compile(RUN_CREATE_SCHEMA),
            run_cancel: compile(RUN_CANCEL_SCHEMA),
        }
    }
}

/// Check `doc` against `schema`; the first violation becomes a 400 validation_error.
pub fn check(schema: &Validator, doc: &Value) -> ApiResult<()> {
    let Some(err) = schema.iter_errors(doc).next() else {
        return Ok(());
    };
    let mut field = pointer_to_field(&err.instance_path().to_string());
    let message = match err.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let name = unexpected.first().cloned().unwrap_or_default();
            field = if field.is_empty() {
                name.clone()
            } else {
                format!("{field}.{name}")
            };
            format!("unknown field {name:?}")
        }
        _ if field.is_empty() => format!("invalid request body: {err}"),
        _ => format!("invalid {field}: {err}"),
    };
    Err(
        ApiError::new(StatusCode::BAD_REQUEST, "validation_error", message)
            .details(json!({ "field": field })),
    )
}

/// A JSON request body, whatever Content-Type it claims (curl's default form type included):
/// what counts is that it parses. An empty body reads as `null`, so endpoints whose body is
/// optional accept it; a body that is not JSON is a 400, one over the limit a 413.
pub struct JsonBody(pub Value);

impl FromRequest<SharedState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &SharedState) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is too large",
                )
                .details(json!({ "maxBytes": state.config.max_body_bytes }))
            } else {
                ApiError::validation(
                    format!("could not read the request body: {rejection}"),
                    "body",
                )
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Value::Null));
        }
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "validation_error",
                format!("the request body is not valid JSON: {e}"),
            )
            .details(json!({ "field": "body", "line": e.line(), "column": e.column() }))
        })?;
        if let Some(field) = field_with_nul(&body, String::new()) {
            return Err(ApiError::validation(
                format!(
                    "{} contains U+0000, which no string may contain",
                    if field.is_empty() { "the body" } else { &field }
                ),
                &field,
            ));
        }
        Ok(JsonBody(body))
    }
}

/// The first string (value or object key) in `v` that contains U+0000, as a field path
/// (`inputs.name`, `tags[2]`). JSON allows the character, but PostgreSQL can store it in
/// neither text nor jsonb, so it is refused up front, naming the field.
pub fn field_with_nul(v: &Value, at: String) -> Option<String> {
    let child = |name: &str| {
        if at.is_empty() {
            name.to_string()
        } else {
            format!("{at}.{name}")
        }
    };
    match v {
        Value::String(s) => s.contains('\0').then_some(at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| field_with_nul(item, format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            if k.contains('\0') {
                Some(child(&k.replace('\0', "\\u0000")))
            } else {
                field_with_nul(item, child(k))
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_in_values_and_keys() {
        assert_eq!(
            field_with_nul(&json!({"a": "ok", "b": [1, "x"]}), String::new()),
            None
        );
        assert_eq!(
            field_with_nul(&json!({"reason": "a\u{0}b"}), String::new()).as_deref(),
            Some("reason")
        );
        assert_eq!(
            field_with_nul(&json!({"tags": ["ok", "\u{0}"]}), String::new()).as_deref(),
            Some("tags[1]")
        );
        assert_eq!(
            field_with_nul(&json!({"inputs": {"k\u{0}": 1}}), String::new()).as_deref(),
            Some("inputs.k\\u0000")
        );
        assert_eq!(
            field_with_nul(&json!({"metadata": {"a": {"b": ["\u{0}"]}}}), String::new()).as_deref(),
            Some("metadata.a.b[0]")
        );
        assert_eq!(
            field_with_nul(&json!("\u{0}"), String::new()).as_deref(),
            Some("")
        );
    }

    #[test]
    fn names_unknown_and_bad_fields() {
        let s = Schemas::load();
        let e = check(&s.run_create, &json!({"workflowId": "w", "surprise": 1})).unwrap_err();
        assert_eq!(e.details.unwrap()["field"], "surprise");
        let e = check(
            &s.run_create,
            &json!({"workflowId": "w", "tags": ["ok", 5]}),
        )
        .unwrap_err();
        assert_eq!(e.details.unwrap()["field"], "tags[1]");
        let e = check(&s.run_create, &json!({})).unwrap_err();
        assert!(e.message.contains("workflowId"));
        assert!(check(
            &s.run_create,
            &json!({"workflowId": "w", "inputs": {"a": 1}, "tags": []})
        )
        .is_ok());
        assert!(check(&s.run_cancel, &json!({"reason": "x"})).is_ok());
        assert_eq!(
            check(&s.run_cancel, &json!({"why": "x"}))
                .unwrap_err()
                .details
                .unwrap()["field"],
            "why"
        );
    }
}
