//! The workflow-definition model the engine executes, and `compile`, which turns a
//! structurally valid definition into an executable graph or names what is wrong with it.
//! Pure: no SPI, no Postgres types, so it is unit-tested with plain `#[test]`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::expr::Expr;

/// Node types this host executes. Anything else is refused at registration.
pub const KNOWN_TYPE_IDS: &[&str] = &[
    "core.noop",
    "core.identity",
    "core.delay",
    "core.fail",
    "core.start",
    "core.end",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    pub id: String,
    pub nodes: Vec<NodeDef>,
    #[serde(default)]
    pub edges: Vec<EdgeDef>,
    #[serde(default)]
    pub variables: Vec<VariableDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeDef {
    pub id: String,
    pub type_id: String,
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub inputs: BTreeMap<String, PortValue>,
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum PortValue {
    Static {
        value: Value,
    },
    Expression {
        expression: String,
    },
    #[serde(rename_all = "camelCase")]
    Connection {
        node_id: String,
        output_key: String,
        #[serde(default)]
        optional: bool,
    },
    #[serde(rename_all = "camelCase")]
    Variable {
        variable_name: String,
        #[serde(default)]
        optional: bool,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeDef {
    pub id: String,
    pub source_node_id: String,
    pub target_node_id: String,
    #[serde(default)]
    pub condition: Option<ConditionDef>,
    #[serde(default)]
    pub trigger_rule: Option<TriggerRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionDef {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub left: Option<String>,
    pub right: Option<Value>,
    pub expression: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    AllSuccess,
    AnySuccess,
    AllComplete,
    NoneFailed,
    AnyFailed,
}

impl TriggerRule {
    /// Rules under which a failed upstream node is an expected path, not a run failure.
    pub fn admits_failure(self) -> bool {
        matches!(self, TriggerRule::AllComplete | TriggerRule::AnyFailed)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariableDef {
    pub name: String,
}

/// An edge condition, checked at registration so a bad one never reaches a run.
#[derive(Debug, Clone)]
pub enum Condition {
    Equals { left: String, right: Value },
    NotEquals { left: String, right: Value },
    Contains { left: String, right: Value },
    Regex { left: String, pattern: regex::Regex },
    Truthy { left: String },
    Falsy { left: String },
    Expression(Expr),
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub id: String,
    pub source: usize,
    pub target: usize,
    pub condition: Option<Condition>,
}

#[derive(Debug, Clone)]
pub enum Port {
    Static(Value),
    Expression(Expr),
    Connection {
        node: usize,
        output_key: String,
        optional: bool,
    },
    Variable {
        name: String,
        optional: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub type_id: String,
    pub config: Map<String, Value>,
    pub inputs: Vec<(String, Port)>,
    pub disabled: bool,
    /// Indexes into `Workflow::edges`.
    pub incoming: Vec<usize>,
    pub outgoing: Vec<usize>,
    /// The trigger rule of this node's incoming edges (they must agree).
    pub trigger_rule: TriggerRule,
}

/// An executable workflow: nodes in a fixed topological order, edges by index.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub id: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Node indexes in topological order (ties keep definition order).
    pub order: Vec<usize>,
}

/// What is wrong with a definition: a message for people and a JSON pointer-ish `field`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub message: String,
    pub field: String,
    pub extra: Map<String, Value>,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            field: field.into(),
            extra: Map::new(),
        }
    }
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
        self
    }
    /// `{message, details: {field, ...}}`, the shape register_workflow raises.
    pub fn to_json(&self) -> Value {
        let mut details = self.extra.clone();
        details.insert("field".into(), Value::String(self.field.clone()));
        json!({ "message": self.message, "details": details })
    }
}

/// Turn a structurally valid definition into an executable workflow.
pub fn compile(def: &Definition) -> Result<Workflow, Problem> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, n) in def.nodes.iter().enumerate() {
        if index.insert(n.id.as_str(), i).is_some() {
            return Err(Problem::new(
                format!("nodes[{i}].id"),
                format!("duplicate node id {:?}", n.id),
            ));
        }
        if !KNOWN_TYPE_IDS.contains(&n.type_id.as_str()) {
            return Err(Problem::new(
                format!("nodes[{i}].typeId"),
                format!(
                    "unknown typeId {:?} on node {:?}; this host executes {}",
                    n.type_id,
                    n.id,
                    KNOWN_TYPE_IDS.join(", ")
                ),
            )
            .with("typeId", json!(n.type_id))
            .with("nodeId", json!(n.id)));
        }
    }
    let mut variable_names = HashSet::new();
    for (i, v) in def.variables.iter().enumerate() {
        if !variable_names.insert(v.name.as_str()) {
            return Err(Problem::new(
                format!("variables[{i}].name"),
                format!("duplicate variable {:?}", v.name),
            ));
        }
    }

    let mut nodes: Vec<Node> = def
        .nodes
        .iter()
        .map(|n| Node {
            id: n.id.clone(),
            type_id: n.type_id.clone(),
            config: n.config.clone(),
            inputs: Vec::new(),
            disabled: n.disabled,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            trigger_rule: TriggerRule::AllSuccess,
        })
        .collect();

    let mut edges = Vec::with_capacity(def.edges.len());
    let mut edge_ids = HashSet::new();
    let mut rule_set: Vec<Option<TriggerRule>> = vec![None; nodes.len()];
    for (i, e) in def.edges.iter().enumerate() {
        if !edge_ids.insert(e.id.as_str()) {
            return Err(Problem::new(
                format!("edges[{i}].id"),
                format!("duplicate edge id {:?}", e.id),
            ));
        }
        let source = *index.get(e.source_node_id.as_str()).ok_or_else(|| {
            Problem::new(
                format!("edges[{i}].sourceNodeId"),
                format!(
                    "edge {:?} starts at unknown node {:?}",
                    e.id, e.source_node_id
                ),
            )
        })?;
        let target = *index.get(e.target_node_id.as_str()).ok_or_else(|| {
            Problem::new(
                format!("edges[{i}].targetNodeId"),
                format!(
                    "edge {:?} ends at unknown node {:?}",
                    e.id, e.target_node_id
                ),
            )
        })?;
        if source == target {
            return Err(Problem::new(
                format!("edges[{i}]"),
                format!("edge {:?} loops on node {:?}", e.id, e.source_node_id),
            ));
        }
        let rule = e.trigger_rule.unwrap_or(TriggerRule::AllSuccess);
        match rule_set[target] {
            Some(r) if r != rule => {
                return Err(Problem::new(
                    format!("edges[{i}].triggerRule"),
                    format!(
                        "edges into node {:?} disagree on triggerRule",
                        e.target_node_id
                    ),
                ))
            }
            _ => rule_set[target] = Some(rule),
        }
        let condition = match &e.condition {
            None => None,
            Some(c) => Some(
                compile_condition(c)
                    .map_err(|msg| Problem::new(format!("edges[{i}].condition"), msg))?,
            ),
        };
        nodes[source].outgoing.push(edges.len());
        nodes[target].incoming.push(edges.len());
        edges.push(Edge {
            id: e.id.clone(),
            source,
            target,
            condition,
        });
    }
    for (n, rule) in nodes.iter_mut().zip(rule_set) {
        n.trigger_rule = rule.unwrap_or(TriggerRule::AllSuccess);
    }

    for (i, n) in def.nodes.iter().enumerate() {
        for (port, value) in &n.inputs {
            let field = format!("nodes[{i}].inputs.{port}");
            let port_value = match value {
                PortValue::Static { value } => Port::Static(value.clone()),
                PortValue::Expression { expression } => Port::Expression(
                    Expr::parse(expression)
                        .map_err(|e| Problem::new(&field, format!("bad expression: {e}")))?,
                ),
                PortValue::Connection {
                    node_id,
                    output_key,
                    optional,
                } => {
                    let node = *index.get(node_id.as_str()).ok_or_else(|| {
                        Problem::new(
                            &field,
                            format!(
                                "input {port:?} of node {:?} connects to unknown node {node_id:?}",
                                n.id
                            ),
                        )
                    })?;
                    Port::Connection {
                        node,
                        output_key: output_key.clone(),
                        optional: *optional,
                    }
                }
                PortValue::Variable {
                    variable_name,
                    optional,
                } => {
                    if !variable_names.contains(variable_name.as_str()) {
                        return Err(Problem::new(
                            &field,
                            format!("input {port:?} of node {:?} reads undeclared variable {variable_name:?}", n.id),
                        ));
                    }
                    Port::Variable {
                        name: variable_name.clone(),
                        optional: *optional,
                    }
                }
            };
            nodes[i].inputs.push((port.clone(), port_value));
        }
    }

    let order = topological_order(&nodes, &edges).ok_or_else(|| {
        Problem::new(
            "edges",
            "the workflow graph has a cycle; workflows must be acyclic",
        )
    })?;
    // A connection input must read a node that always finishes first.
    for &i in &order {
        for (port, p) in &nodes[i].inputs {
            if let Port::Connection { node, .. } = p {
                if !is_ancestor(&nodes, &edges, *node, i) {
                    return Err(Problem::new(
                        format!("nodes[{i}].inputs.{port}"),
                        format!("input {port:?} of node {:?} connects to {:?}, which is not upstream of it", nodes[i].id, nodes[*node].id),
                    ));
                }
            }
        }
    }
    Ok(Workflow {
        id: def.id.clone(),
        nodes,
        edges,
        order,
    })
}

fn compile_condition(c: &ConditionDef) -> Result<Condition, String> {
    let kind = c.kind.as_deref().unwrap_or(if c.expression.is_some() {
        "expression"
    } else {
        "truthy"
    });
    let left = || {
        c.left
            .clone()
            .ok_or_else(|| format!("condition type {kind:?} needs `left`"))
    };
    let right = || {
        c.right
            .clone()
            .ok_or_else(|| format!("condition type {kind:?} needs `right`"))
    };
    Ok(match kind {
        "equals" => Condition::Equals {
            left: left()?,
            right: right()?,
        },
        "notEquals" => Condition::NotEquals {
            left: left()?,
            right: right()?,
        },
        "contains" => Condition::Contains {
            left: left()?,
            right: right()?,
        },
        "regex" => {
            let pattern = match right()? {
                Value::String(s) => s,
                _ => return Err("condition type \"regex\" needs a string `right` pattern".into()),
            };
            let pattern = regex::RegexBuilder::new(&pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("bad regex: {e}"))?;
            Condition::Regex {
                left: left()?,
                pattern,
            }
        }
        "truthy" => Condition::Truthy { left: left()? },
        "falsy" => Condition::Falsy { left: left()? },
        "expression" => {
            let src = c
                .expression
                .as_deref()
                .ok_or("condition type \"expression\" needs `expression`")?;
            Condition::Expression(Expr::parse(src).map_err(|e| format!("bad expression: {e}"))?)
        }
        other => return Err(format!("unknown condition type {other:?}")),
    })
}

/// Kahn's algorithm; among ready nodes the earliest in definition order goes first.
fn topological_order(nodes: &[Node], edges: &[Edge]) -> Option<Vec<usize>> {
    let mut indegree: Vec<usize> = nodes.iter().map(|n| n.incoming.len()).collect();
    let mut ready: std::collections::BTreeSet<usize> =
        (0..nodes.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &e in &nodes[i].outgoing {
            let t = edges[e].target;
            indegree[t] -= 1;
            if indegree[t] == 0 {
                ready.insert(t);
            }
        }
    }
    (order.len() == nodes.len()).then_some(order)
}

fn is_ancestor(nodes: &[Node], edges: &[Edge], ancestor: usize, of: usize) -> bool {
    let mut seen = vec![false; nodes.len()];
    let mut queue = VecDeque::from([of]);
    while let Some(n) = queue.pop_front() {
        for &e in &nodes[n].incoming {
            let s = edges[e].source;
            if s == ancestor {
                return true;
            }
            if !seen[s] {
                seen[s] = true;
                queue.push_back(s);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(v: Value) -> Definition {
        serde_json::from_value(v).unwrap()
    }

    fn node(id: &str, type_id: &str) -> Value {
        json!({"id": id, "typeId": type_id, "name": id, "position": {"x": 0, "y": 0}, "config": {}, "inputs": {}})
    }

    #[test]
    fn orders_nodes_topologically() {
        let d = def(
            json!({"id": "w", "nodes": [node("c", "core.noop"), node("a", "core.noop"), node("b", "core.noop")],
            "edges": [{"id": "e1", "sourceNodeId": "a", "targetNodeId": "b"}, {"id": "e2", "sourceNodeId": "b", "targetNodeId": "c"}]}),
        );
        let w = compile(&d).unwrap();
        let ids: Vec<&str> = w.order.iter().map(|&i| w.nodes[i].id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn refuses_unknown_type_ids_naming_the_field() {
        let d = def(
            json!({"id": "w", "nodes": [node("a", "core.noop"), node("b", "vendor.acme.magic")]}),
        );
        let p = compile(&d).unwrap_err();
        assert_eq!(p.field, "nodes[1].typeId");
        assert!(p.message.contains("vendor.acme.magic"));
    }

    #[test]
    fn refuses_cycles_and_dangling_edges() {
        let cyc = def(
            json!({"id": "w", "nodes": [node("a", "core.noop"), node("b", "core.noop")],
            "edges": [{"id": "e1", "sourceNodeId": "a", "targetNodeId": "b"}, {"id": "e2", "sourceNodeId": "b", "targetNodeId": "a"}]}),
        );
        assert_eq!(compile(&cyc).unwrap_err().field, "edges");
        let dangling = def(json!({"id": "w", "nodes": [node("a", "core.noop")],
            "edges": [{"id": "e1", "sourceNodeId": "a", "targetNodeId": "zz"}]}));
        assert_eq!(
            compile(&dangling).unwrap_err().field,
            "edges[0].targetNodeId"
        );
    }

    #[test]
    fn refuses_duplicates_bad_conditions_and_undeclared_variables() {
        let dup =
            def(json!({"id": "w", "nodes": [node("a", "core.noop"), node("a", "core.noop")]}));
        assert_eq!(compile(&dup).unwrap_err().field, "nodes[1].id");
        let bad_regex = def(
            json!({"id": "w", "nodes": [node("a", "core.noop"), node("b", "core.noop")],
            "edges": [{"id": "e", "sourceNodeId": "a", "targetNodeId": "b", "condition": {"type": "regex", "left": "x", "right": "("}}]}),
        );
        assert_eq!(compile(&bad_regex).unwrap_err().field, "edges[0].condition");
        let mut n = node("a", "core.identity");
        n["inputs"] = json!({"payload": {"type": "variable", "variableName": "nope"}});
        let undeclared = def(json!({"id": "w", "nodes": [n]}));
        assert_eq!(
            compile(&undeclared).unwrap_err().field,
            "nodes[0].inputs.payload"
        );
    }

    #[test]
    fn connection_inputs_must_read_upstream_nodes() {
        let mut b = node("b", "core.identity");
        b["inputs"] = json!({"x": {"type": "connection", "nodeId": "c", "outputKey": "y"}});
        let d = def(
            json!({"id": "w", "nodes": [node("a", "core.noop"), b, node("c", "core.noop")],
            "edges": [{"id": "e1", "sourceNodeId": "a", "targetNodeId": "b"}]}),
        );
        assert_eq!(compile(&d).unwrap_err().field, "nodes[1].inputs.x");
    }
}
