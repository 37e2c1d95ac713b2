//! JSON Schemas supplied by workflow authors (`configurableSchema`), compiled once per backend
//! and checked against documents. A schema that does not compile is refused at registration
//! (see `definition_check`), so here it only answers "valid or not, and where".

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{json, Value};

use crate::field_path::pointer_to_field;

/// Compiled schemas this backend keeps (a small working set; cleared when full).
const CAPACITY: usize = 128;

thread_local! {
    static COMPILED: RefCell<HashMap<String, Rc<jsonschema::Validator>>> = RefCell::new(HashMap::new());
}

/// Compile a schema, or say why it is not one.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|e| e.to_string())
}

/// `None` when `doc` is valid under `schema`, else `{"message", "field"}`.
pub fn check(schema: &Value, doc: &Value) -> Option<Value> {
    let key = schema.to_string();
    let validator = COMPILED.with(|c| c.borrow().get(&key).cloned());
    let validator = match validator {
        Some(v) => v,
        None => match compile(schema) {
            Ok(v) => {
                let v = Rc::new(v);
                COMPILED.with(|c| {
                    let mut c = c.borrow_mut();
                    if c.len() >= CAPACITY {
                        c.clear();
                    }
                    c.insert(key, v.clone());
                });
                v
            }
            Err(e) => {
                return Some(
                    json!({ "message": format!("the schema itself is invalid: {e}"), "field": "" }),
                )
            }
        },
    };
    let err = validator.iter_errors(doc).next()?;
    Some(
        json!({ "message": err.to_string(), "field": pointer_to_field(&err.instance_path().to_string()) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_and_names_the_field() {
        let schema = json!({"type": "object", "properties": {"temperature": {"type": "number", "maximum": 1}}});
        assert_eq!(check(&schema, &json!({"temperature": 0.5})), None);
        let p = check(&schema, &json!({"temperature": 3})).unwrap();
        assert_eq!(p["field"], "temperature");
        assert!(check(&json!({"type": "nonsense"}), &json!({})).is_some());
    }
}
