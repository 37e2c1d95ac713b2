//! The run options overlay (`configurable`): the reserved keys the protocol gives meaning to
//! are checked and turned into the run's limits here, once, at create; every other key is the
//! caller's and passes through untouched. Pure, tested with plain `#[test]`.

use serde_json::{json, Map, Value};

/// The host's ceilings (the `openwop.max_*` settings, advertised in discovery).
#[derive(Debug, Clone, Copy)]
pub struct HostLimits {
    pub max_node_executions: i64,
    pub max_run_duration_ms: i64,
    pub max_loop_iterations: i64,
}

/// The limits a run carries for its whole life.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunLimits {
    pub max_node_executions: i64,
    pub run_timeout_ms: i64,
    pub max_loop_iterations: i64,
}

/// Why an overlay was refused: HTTP status, OpenWOP code, message, details.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

impl Refusal {
    fn range(key: &str, value: &Value, min: Value, max: Value, what: &str) -> Refusal {
        Refusal {
            status: 400,
            code: "validation_error",
            message: format!("configurable.{key} must be {what}"),
            details: json!({ "key": key, "value": value, "min": min, "max": max }),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({ "status": self.status, "code": self.code, "message": self.message, "details": self.details })
    }
}

fn integer(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// An integer in `min..` clamped to `max` (the spec clamps over-large limits, refuses nonsense).
fn clamped_integer(conf: &Map<String, Value>, key: &str, max: i64) -> Result<Option<i64>, Refusal> {
    match conf.get(key) {
        None => Ok(None),
        Some(v) => match integer(v) {
            Some(n) if n >= 1 => Ok(Some(n.min(max))),
            _ => Err(Refusal::range(
                key,
                v,
                json!(1),
                json!(max),
                &format!("an integer between 1 and {max}"),
            )),
        },
    }
}

fn number_in(conf: &Map<String, Value>, key: &str, min: f64, max: f64) -> Result<(), Refusal> {
    match conf.get(key) {
        None => Ok(()),
        Some(v) => match v.as_f64() {
            Some(f) if (min..=max).contains(&f) => Ok(()),
            _ => Err(Refusal::range(
                key,
                v,
                json!(min),
                json!(max),
                &format!("a number between {min} and {max}"),
            )),
        },
    }
}

/// What discovery advertises under `configurable`: the reserved keys and their bounds.
pub fn advertised(host: &HostLimits) -> Value {
    json!({
        "recursionLimit": { "type": "integer", "min": 1, "max": host.max_node_executions },
        "runTimeoutMs": { "type": "integer", "min": 1, "max": host.max_run_duration_ms },
        "maxLoopIterations": { "type": "integer", "min": 1, "max": host.max_loop_iterations },
        "temperature": { "type": "number", "min": 0, "max": 2 },
        "maxTokens": { "type": "integer", "min": 1 },
        "escalationThreshold": { "type": "number", "min": 0, "max": 1 }
    })
}

/// Check `configurable` and resolve the run's limits. `workflow_timeout_ms` is the workflow's
/// own `settings.timeout` (0: none).
pub fn resolve(
    configurable: &Value,
    workflow_timeout_ms: i64,
    host: &HostLimits,
) -> Result<RunLimits, Refusal> {
    let empty = Map::new();
    let conf = match configurable {
        Value::Null => &empty,
        Value::Object(m) => m,
        other => {
            return Err(Refusal {
                status: 400,
                code: "validation_error",
                message: "configurable must be a JSON object".into(),
                details: json!({ "field": "configurable", "value": other }),
            })
        }
    };
    let max_node_executions = clamped_integer(conf, "recursionLimit", host.max_node_executions)?
        .unwrap_or(host.max_node_executions);
    let mut run_timeout_ms = host.max_run_duration_ms;
    if workflow_timeout_ms > 0 {
        run_timeout_ms = run_timeout_ms.min(workflow_timeout_ms);
    }
    if let Some(t) = clamped_integer(conf, "runTimeoutMs", host.max_run_duration_ms)? {
        run_timeout_ms = run_timeout_ms.min(t);
    }
    let max_loop_iterations = clamped_integer(conf, "maxLoopIterations", host.max_loop_iterations)?
        .unwrap_or(host.max_loop_iterations);
    number_in(conf, "temperature", 0.0, 2.0)?;
    number_in(conf, "escalationThreshold", 0.0, 1.0)?;
    clamped_integer(conf, "maxTokens", i64::MAX)?;
    if let Some(v) = conf.get("reasoningVerbosity") {
        if !matches!(v.as_str(), Some("summary" | "full" | "off" | "none")) {
            return Err(Refusal {
                status: 400,
                code: "validation_error",
                message: "configurable.reasoningVerbosity must be one of summary, full, off".into(),
                details: json!({ "key": "reasoningVerbosity", "value": v, "allowed": ["summary", "full", "off"] }),
            });
        }
    }
    if let Some(v) = conf.get("promptOverrides") {
        if !v
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string))
        {
            return Err(Refusal {
                status: 400,
                code: "validation_error",
                message: "configurable.promptOverrides must map prompt ids to text".into(),
                details: json!({ "key": "promptOverrides", "value": v }),
            });
        }
    }
    if let Some(d) = conf.get("distillation") {
        let budget = d.get("tokenBudget");
        if !d.is_object() || budget.is_some_and(|b| integer(b).is_none_or(|n| n < 1)) {
            return Err(Refusal::range(
                "distillation.tokenBudget",
                budget.unwrap_or(d),
                json!(1),
                Value::Null,
                "an integer >= 1",
            ));
        }
    }
    if conf.contains_key("mockProvider") {
        return Err(Refusal {
            status: 403,
            code: "mock_provider_forbidden",
            message: "configurable.mockProvider is only accepted from test keys, and this host issues none".into(),
            details: json!({ "key": "mockProvider" }),
        });
    }
    let ai = conf.get("ai").and_then(Value::as_object);
    if let Some(provider) = ai
        .and_then(|a| a.get("provider"))
        .or_else(|| conf.get("ai.provider"))
    {
        return Err(Refusal {
            status: 400,
            code: "validation_error",
            message: format!(
                "AI provider {provider} is not supported: this host advertises no aiProviders"
            ),
            details: json!({ "key": "ai.provider", "value": provider }),
        });
    }
    if let Some(cred) = ai
        .and_then(|a| a.get("credentialRef"))
        .or_else(|| conf.get("ai.credentialRef"))
    {
        return Err(Refusal {
            status: 403,
            code: "credential_forbidden",
            message: "configurable.ai.credentialRef is not accepted: this host offers no bring-your-own-key provider".into(),
            details: json!({ "key": "ai.credentialRef", "value": cred }),
        });
    }
    Ok(RunLimits {
        max_node_executions,
        run_timeout_ms,
        max_loop_iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: HostLimits = HostLimits {
        max_node_executions: 100,
        max_run_duration_ms: 3_600_000,
        max_loop_iterations: 50,
    };

    #[test]
    fn defaults_come_from_the_host_and_the_workflow() {
        let l = resolve(&Value::Null, 0, &HOST).unwrap();
        assert_eq!(
            l,
            RunLimits {
                max_node_executions: 100,
                run_timeout_ms: 3_600_000,
                max_loop_iterations: 50
            }
        );
        assert_eq!(
            resolve(&json!({}), 10_000, &HOST).unwrap().run_timeout_ms,
            10_000
        );
    }

    #[test]
    fn reserved_limits_are_clamped_to_the_host() {
        let l = resolve(
            &json!({"recursionLimit": 5000, "runTimeoutMs": 99_999_999, "maxLoopIterations": 7}),
            0,
            &HOST,
        )
        .unwrap();
        assert_eq!(
            l,
            RunLimits {
                max_node_executions: 100,
                run_timeout_ms: 3_600_000,
                max_loop_iterations: 7
            }
        );
        let l = resolve(
            &json!({"recursionLimit": 3.0, "runTimeoutMs": 250}),
            60_000,
            &HOST,
        )
        .unwrap();
        assert_eq!((l.max_node_executions, l.run_timeout_ms), (3, 250));
    }

    #[test]
    fn nonsense_is_refused_with_the_range() {
        let e = resolve(&json!({"recursionLimit": 0}), 0, &HOST).unwrap_err();
        assert_eq!((e.status, e.code), (400, "validation_error"));
        assert_eq!(
            e.details,
            json!({"key": "recursionLimit", "value": 0, "min": 1, "max": 100})
        );
        for bad in [
            json!({"recursionLimit": 2.5}),
            json!({"runTimeoutMs": "soon"}),
            json!({"temperature": 2.5}),
            json!({"escalationThreshold": -0.1}),
            json!({"maxTokens": 0}),
            json!({"reasoningVerbosity": "loud"}),
            json!({"promptOverrides": {"a": 1}}),
            json!({"distillation": {"tokenBudget": 0}}),
            json!([1]),
        ] {
            assert_eq!(resolve(&bad, 0, &HOST).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn provider_and_test_only_keys_are_refused_with_their_codes() {
        assert_eq!(
            resolve(&json!({"mockProvider": {"id": "x"}}), 0, &HOST)
                .unwrap_err()
                .code,
            "mock_provider_forbidden"
        );
        assert_eq!(
            resolve(&json!({"ai": {"provider": "openai"}}), 0, &HOST)
                .unwrap_err()
                .code,
            "validation_error"
        );
        assert_eq!(
            resolve(&json!({"ai": {"credentialRef": "k"}}), 0, &HOST)
                .unwrap_err()
                .code,
            "credential_forbidden"
        );
    }

    #[test]
    fn other_keys_pass_through() {
        assert!(resolve(
            &json!({"myKnob": {"deep": [1, 2]}, "model": "m", "temperature": 0.7}),
            0,
            &HOST
        )
        .is_ok());
    }
}
