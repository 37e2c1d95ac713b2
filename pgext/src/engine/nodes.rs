//! What each node type does, given its resolved inputs. Pure: the step function turns the
//! outcome into events and state.

use serde_json::{json, Map, Value};

use super::model::Node;

/// The longest delay a `core.delay` node may ask for (30 days).
pub const MAX_DELAY_MS: i64 = 30 * 24 * 3600 * 1000;

/// An error as carried by `node.failed`, `run.failed` and `RunSnapshot.error`.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorObject {
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
}

impl ErrorObject {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ErrorObject {
            code: code.to_string(),
            message: message.into(),
            details: None,
        }
    }
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "code": self.code, "message": self.message });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed(Map<String, Value>),
    /// Come back after this many milliseconds (a durable timer, never a sleep).
    Wait {
        delay_ms: i64,
    },
    Failed(ErrorObject),
}

/// Run a node whose inputs have been resolved.
pub fn execute(node: &Node, inputs: Map<String, Value>) -> Outcome {
    match node.type_id.as_str() {
        "core.noop" => Outcome::Completed(Map::new()),
        // identity echoes every input port to the output port of the same name; start/end
        // are pass-through markers.
        "core.identity" | "core.start" | "core.end" => Outcome::Completed(inputs),
        "core.delay" => delay(node, &inputs),
        "core.fail" => {
            let text = |k: &str, default: &str| {
                node.config
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or(default)
                    .to_string()
            };
            Outcome::Failed(ErrorObject::new(
                &text("errorCode", "conformance_test_failure"),
                text("message", "Intentional conformance failure"),
            ))
        }
        other => Outcome::Failed(ErrorObject::new(
            "validation_error",
            format!("node type {other:?} is not executable here"),
        )),
    }
}

fn delay(node: &Node, inputs: &Map<String, Value>) -> Outcome {
    let raw = inputs.get("delayMs").or_else(|| node.config.get("delayMs"));
    let ms = match raw {
        None | Some(Value::Null) => 0.0,
        Some(v) => match v.as_f64() {
            Some(f) if f.is_finite() => f,
            _ => {
                return Outcome::Failed(ErrorObject::new(
                    "validation_error",
                    format!("delayMs must be a number, got {v}"),
                ))
            }
        },
    };
    if !(0.0..=MAX_DELAY_MS as f64).contains(&ms) {
        return Outcome::Failed(ErrorObject::new(
            "validation_error",
            format!("delayMs must be between 0 and {MAX_DELAY_MS}, got {ms}"),
        ));
    }
    let delay_ms = ms.round() as i64;
    if delay_ms == 0 {
        Outcome::Completed(delay_outputs(0))
    } else {
        Outcome::Wait { delay_ms }
    }
}

/// What a finished delay outputs.
pub fn delay_outputs(delay_ms: i64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("delayMs".into(), json!(delay_ms));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::TriggerRule;

    fn node(type_id: &str, config: Value) -> Node {
        Node {
            id: "n".into(),
            type_id: type_id.into(),
            config: config.as_object().cloned().unwrap_or_default(),
            inputs: vec![],
            disabled: false,
            incoming: vec![],
            outgoing: vec![],
            trigger_rule: TriggerRule::AllSuccess,
        }
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn identity_echoes_and_fail_fails() {
        let out = execute(
            &node("core.identity", json!({})),
            map(json!({"payload": {"a": [1, 2]}})),
        );
        assert_eq!(
            out,
            Outcome::Completed(map(json!({"payload": {"a": [1, 2]}})))
        );
        match execute(&node("core.fail", json!({})), Map::new()) {
            Outcome::Failed(e) => {
                assert_eq!(e.code, "conformance_test_failure");
                assert_eq!(e.message, "Intentional conformance failure");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn delay_reads_input_then_config_and_checks_range() {
        assert_eq!(
            execute(&node("core.delay", json!({"delayMs": 5})), Map::new()),
            Outcome::Wait { delay_ms: 5 }
        );
        assert_eq!(
            execute(
                &node("core.delay", json!({"delayMs": 5})),
                map(json!({"delayMs": 7}))
            ),
            Outcome::Wait { delay_ms: 7 }
        );
        assert_eq!(
            execute(&node("core.delay", json!({})), Map::new()),
            Outcome::Completed(delay_outputs(0))
        );
        assert!(matches!(
            execute(&node("core.delay", json!({})), map(json!({"delayMs": -1}))),
            Outcome::Failed(_)
        ));
        assert!(matches!(
            execute(
                &node("core.delay", json!({})),
                map(json!({"delayMs": "soon"}))
            ),
            Outcome::Failed(_)
        ));
    }
}
