//! Checking a workflow definition at registration: first the closed JSON shape (our JSON
//! Schema in `schemas/`, the same file the edge serves and validates with), then the
//! semantic rules in `engine::model::compile`.

use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::engine::model::{compile, Definition, Problem};
use crate::field_path::pointer_to_field;

const SCHEMA_SOURCE: &str = include_str!("../../schemas/workflow-definition.v1.json");

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(SCHEMA_SOURCE).expect("workflow-definition schema is valid JSON");
        jsonschema::validator_for(&schema).expect("workflow-definition schema compiles")
    })
}

/// `None` when the definition is acceptable, else `{message, details: {field, ...}}`.
pub fn check(definition: &Value) -> Option<Value> {
    if let Some(err) = validator().iter_errors(definition).next() {
        let pointer = err.instance_path().to_string();
        let field = pointer_to_field(&pointer);
        let at = if field.is_empty() {
            "the definition".to_string()
        } else {
            field.clone()
        };
        return Some(json!({
            "message": format!("invalid workflow definition at {at}: {err}"),
            "details": { "field": field, "schemaPath": err.schema_path().to_string() }
        }));
    }
    if let Some(schema) = definition.get("configurableSchema") {
        if let Err(e) = crate::schema_cache::compile(schema) {
            return Some(
                Problem::new(
                    "configurableSchema",
                    format!("configurableSchema is not a valid JSON Schema: {e}"),
                )
                .to_json(),
            );
        }
    }
    let def: Definition = match serde_json::from_value(definition.clone()) {
        Ok(d) => d,
        Err(e) => {
            return Some(Problem::new("", format!("invalid workflow definition: {e}")).to_json())
        }
    };
    compile(&def).err().map(|p| p.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Value {
        json!({"id": "w", "name": "W", "version": "1", "nodes": [
            {"id": "a", "typeId": "core.noop", "name": "A", "position": {"x": 0, "y": 0}, "config": {}, "inputs": {}}],
            "edges": [], "triggers": [], "variables": [], "metadata": {}, "settings": {}})
    }

    #[test]
    fn accepts_a_minimal_definition() {
        assert_eq!(check(&minimal()), None);
    }

    #[test]
    fn names_the_field_of_a_shape_error() {
        let mut d = minimal();
        d["nodes"][0]["surprise"] = json!(1);
        let p = check(&d).unwrap();
        assert_eq!(p["details"]["field"], "nodes[0]");
        let mut d = minimal();
        d.as_object_mut().unwrap().remove("settings");
        assert!(check(&d).unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("settings"));
        let mut d = minimal();
        d["nodes"][0]["typeId"] = json!("Bad Type");
        assert_eq!(check(&d).unwrap()["details"]["field"], "nodes[0].typeId");
    }

    #[test]
    fn semantic_errors_come_from_compile() {
        let mut d = minimal();
        d["nodes"][0]["typeId"] = json!("core.teleport");
        let p = check(&d).unwrap();
        assert_eq!(p["details"]["field"], "nodes[0].typeId");
        assert_eq!(p["details"]["typeId"], "core.teleport");
    }
}
