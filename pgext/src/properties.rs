//! Property tests of what parses untrusted input inside the engine: the workflow-definition
//! validator (`definition_check::check`, which also runs `engine::model::compile`), the
//! condition-expression parser and the path parser. None may panic on any input (a panic in
//! a backend aborts the caller's transaction with an internal error); expressions round-trip
//! through their source form.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::definition_check;
use crate::engine::expr::{parse_path, CmpOp, Expr, Segment};

/// Any JSON value, a few levels deep, with keys that sometimes hit the definition's own
/// field names so mutated definitions stay close to valid.
fn any_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("id".to_string()),
        Just("typeId".to_string()),
        Just("nodes".to_string()),
        Just("edges".to_string()),
        Just("sourceNodeId".to_string()),
        Just("targetNodeId".to_string()),
        Just("condition".to_string()),
        Just("inputs".to_string()),
        Just("type".to_string()),
        ".{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        Just(json!("core.noop")),
        Just(json!("a")),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn node(id: &str, type_id: &str, inputs: Value) -> Value {
    json!({ "id": id, "typeId": type_id, "name": id, "position": { "x": 0, "y": 0 },
            "config": {}, "inputs": inputs })
}

fn definition(nodes: Vec<Value>, edges: Vec<Value>) -> Value {
    json!({ "id": "w", "name": "W", "version": "1", "nodes": nodes, "edges": edges,
            "triggers": [], "variables": [], "metadata": {}, "settings": {} })
}

/// Definitions that pass the closed shape, with random graphs (cycles, dangling and
/// duplicate edges, self loops), random type ids, inputs and conditions, so the semantic
/// checks in `compile` see hostile structure, not just bad shape.
fn shaped_definition() -> impl Strategy<Value = Value> {
    let type_id = prop_oneof![
        Just("core.noop"),
        Just("core.identity"),
        Just("core.delay"),
        Just("core.fail"),
        Just("core.teleport"),
    ];
    let input = prop_oneof![
        Just(json!({})),
        (0usize..6).prop_map(|n| json!({ "in": { "type": "connection", "nodeId": format!("n{n}"), "outputKey": "out" } })),
        prop_oneof![Just("v"), Just("nope")]
            .prop_map(|v| json!({ "in": { "type": "variable", "variableName": v } })),
        ".{1,24}".prop_map(|e| json!({ "in": { "type": "expression", "expression": e } })),
        any_json().prop_map(|v| json!({ "in": { "type": "static", "value": v } })),
        any_json().prop_map(|v| json!({ "in": v })),
    ];
    let condition = prop_oneof![
        Just(Value::Null),
        ".{0,24}".prop_map(|e| json!({ "type": "expression", "expression": e })),
        (
            prop_oneof![
                Just("equals"),
                Just("notEquals"),
                Just("contains"),
                Just("regex"),
                Just("truthy"),
                Just("falsy")
            ],
            ".{0,12}",
            any_json()
        )
            .prop_map(|(t, left, right)| json!({ "type": t, "left": left, "right": right })),
        any_json(),
    ];
    let rule = prop_oneof![
        Just(Value::Null),
        Just(json!("all_success")),
        Just(json!("any_failed")),
        Just(json!("none_failed")),
    ];
    (1usize..6)
        .prop_flat_map(move |n| {
            let nodes = prop::collection::vec((type_id.clone(), input.clone()), n);
            let edges =
                prop::collection::vec((0..n + 1, 0..n + 1, condition.clone(), rule.clone()), 0..8);
            (nodes, edges)
        })
        .prop_map(|(nodes, edges)| {
            let nodes = nodes
                .into_iter()
                .enumerate()
                .map(|(i, (t, inputs))| node(&format!("n{i}"), t, inputs))
                .collect();
            let edges = edges
                .into_iter()
                .enumerate()
                .map(|(i, (s, t, c, rule))| {
                    let mut e = json!({ "id": format!("e{i}"), "sourceNodeId": format!("n{s}"),
                                        "targetNodeId": format!("n{t}") });
                    if !c.is_null() {
                        e["condition"] = c;
                    }
                    if !rule.is_null() {
                        e["triggerRule"] = rule;
                    }
                    e
                })
                .collect();
            let mut def = definition(nodes, edges);
            def["variables"] = json!([{ "name": "v", "type": "string" }]);
            def
        })
}

/// Expression trees that the grammar can spell: names never collide with the literal words
/// and numbers are the f64 values the parser produces.
fn any_expr() -> impl Strategy<Value = Expr> {
    let name = "[A-Za-z_$][A-Za-z0-9_$-]{0,6}".prop_filter("literal words", |n| {
        !matches!(n.as_str(), "true" | "false" | "null")
    });
    let segment = prop_oneof![
        name.clone().prop_map(Segment::Key),
        (0usize..1000).prop_map(Segment::Index),
    ];
    let path = (name, prop::collection::vec(segment, 0..4)).prop_map(|(first, rest)| {
        let mut p = vec![Segment::Key(first)];
        p.extend(rest);
        Expr::Path(p)
    });
    let literal = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-100_000i32..100_000).prop_map(|n| json!(n as f64 / 4.0)),
        ".{0,10}".prop_map(Value::String),
    ]
    .prop_map(Expr::Literal);
    let ops = prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge),
    ];
    prop_oneof![literal, path].prop_recursive(5, 40, 2, move |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
            (ops.clone(), inner.clone(), inner).prop_map(|(op, a, b)| Expr::Compare(
                op,
                Box::new(a),
                Box::new(b)
            )),
        ]
    })
}

/// The source form of an expression, fully parenthesised.
fn render(e: &Expr) -> String {
    match e {
        Expr::Literal(Value::String(s)) => {
            let mut out = String::from("'");
            for c in s.chars() {
                match c {
                    '\\' | '\'' => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push('\'');
            out
        }
        Expr::Literal(v) => v.as_f64().map_or_else(|| v.to_string(), |f| f.to_string()),
        Expr::Path(p) => {
            let mut out = String::new();
            for (i, s) in p.iter().enumerate() {
                match s {
                    Segment::Key(k) if i == 0 => out.push_str(k),
                    Segment::Key(k) => out.push_str(&format!(".{k}")),
                    Segment::Index(n) => out.push_str(&format!("[{n}]")),
                }
            }
            out
        }
        // `!` binds looser than a comparison here, so it is parenthesised as a whole too.
        Expr::Not(x) => format!("(!({}))", render(x)),
        Expr::And(a, b) => format!("({} && {})", render(a), render(b)),
        Expr::Or(a, b) => format!("({} || {})", render(a), render(b)),
        Expr::Compare(op, a, b) => {
            let op = match op {
                CmpOp::Eq => "==",
                CmpOp::Ne => "!=",
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
            };
            format!("({} {op} {})", render(a), render(b))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_validator_never_panics_on_any_json(doc in any_json()) {
        let _ = definition_check::check(&doc);
    }

    #[test]
    fn the_validator_never_panics_on_hostile_graphs(def in shaped_definition()) {
        if let Some(problem) = definition_check::check(&def) {
            // A refusal always says what and where.
            prop_assert!(problem["message"].as_str().is_some_and(|m| !m.is_empty()));
            prop_assert!(problem["details"]["field"].is_string());
        }
    }

    #[test]
    fn the_validator_never_panics_on_mutated_definitions(
        at in 0usize..8, value in any_json()
    ) {
        let mut def = definition(
            vec![node("a", "core.noop", json!({})), node("b", "core.identity", json!({}))],
            vec![json!({ "id": "e", "sourceNodeId": "a", "targetNodeId": "b" })],
        );
        let slot = match at {
            0 => &mut def["nodes"],
            1 => &mut def["nodes"][0],
            2 => &mut def["nodes"][1]["inputs"],
            3 => &mut def["edges"][0],
            4 => &mut def["edges"][0]["condition"],
            5 => &mut def["variables"],
            6 => &mut def["settings"],
            _ => &mut def["configurableSchema"],
        };
        *slot = value;
        let _ = definition_check::check(&def);
    }

    #[test]
    fn expressions_never_panic_on_any_text(src in any::<String>()) {
        if let Ok(e) = Expr::parse(&src) {
            let _ = e.eval(&|_| Some(json!({ "x": [1, "two", null] })));
        }
        let _ = parse_path(&src);
    }

    #[test]
    fn expressions_never_panic_on_near_grammar_text(
        src in r#"[a-z0-9_$.\[\]()'"!=<>&| \\-]{0,40}"#
    ) {
        if let Ok(e) = Expr::parse(&src) {
            let _ = e.eval(&|_| None);
        }
        let _ = parse_path(&src);
    }

    #[test]
    fn expressions_round_trip_through_their_source(e in any_expr()) {
        let src = render(&e);
        prop_assert_eq!(Expr::parse(&src), Ok(e), "source: {}", src);
    }
}
