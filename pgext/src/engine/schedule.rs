//! What may run next, read off a run's state: the next ready node, whether its trigger rule
//! admits it (edge conditions included), and the values of its inputs. Pure and read-only:
//! the stepper decides, the reducer records.

use serde_json::{json, Map, Value};

use super::expr::{json_eq, lookup, parse_path, truthy, Segment};
use super::model::{Condition, Port, TriggerRule, Workflow};
use super::nodes::ErrorObject;
use super::state::{NodeState, NodeStatus, RunState};

/// A run's state seen through its workflow.
pub struct Schedule<'a> {
    pub wf: &'a Workflow,
    pub state: &'a RunState,
    /// The run's inputs, as given at creation.
    pub inputs: &'a Value,
}

impl<'a> Schedule<'a> {
    /// The state of node `i` (by position in the workflow), if it has one yet.
    pub fn node(&self, i: usize) -> Option<&'a NodeState> {
        self.state.node(&self.wf.nodes[i].id)
    }

    /// A node with no state yet whose upstream nodes have all settled, in topological order.
    pub fn next_ready_node(&self) -> Option<usize> {
        self.wf.order.iter().copied().find(|&i| {
            self.node(i).is_none()
                && self.wf.nodes[i].incoming.iter().all(|&e| {
                    self.node(self.wf.edges[e].source)
                        .is_some_and(|s| s.status != NodeStatus::Running)
                })
        })
    }

    /// Positions of the nodes still running (waiting on a timer), in workflow order.
    pub fn running_nodes(&self) -> Vec<usize> {
        (0..self.wf.nodes.len())
            .filter(|&i| {
                self.node(i)
                    .is_some_and(|s| s.status == NodeStatus::Running)
            })
            .collect()
    }

    /// Ok when node `i` should run; Err(reason) when its trigger rule says skip.
    pub fn trigger_verdict(&self, i: usize) -> Result<(), String> {
        let node = &self.wf.nodes[i];
        if node.incoming.is_empty() {
            return Ok(());
        }
        let (mut success, mut failed, mut first_reason) = (0, 0, None);
        for &e in &node.incoming {
            let edge = &self.wf.edges[e];
            let source = &self.wf.nodes[edge.source];
            let reason = match self.node(edge.source).map(|s| s.status) {
                Some(NodeStatus::Completed) => match &edge.condition {
                    Some(c) if !self.condition_holds(c, edge.source) => {
                        Some(format!("condition on edge {:?} is false", edge.id))
                    }
                    _ => {
                        success += 1;
                        None
                    }
                },
                Some(NodeStatus::Failed) => {
                    failed += 1;
                    Some(format!("upstream node {:?} failed", source.id))
                }
                _ => Some(format!("upstream node {:?} was skipped", source.id)),
            };
            if first_reason.is_none() {
                first_reason = reason;
            }
        }
        let total = node.incoming.len();
        let ok = match node.trigger_rule {
            TriggerRule::AllSuccess => success == total,
            TriggerRule::AnySuccess => success > 0,
            TriggerRule::AllComplete => true,
            TriggerRule::NoneFailed => failed == 0,
            TriggerRule::AnyFailed => failed > 0,
        };
        if ok {
            return Ok(());
        }
        Err(match node.trigger_rule {
            TriggerRule::AnySuccess => "no upstream node succeeded".to_string(),
            TriggerRule::AnyFailed => "no upstream node failed".to_string(),
            _ => first_reason.unwrap_or_else(|| "trigger rule not satisfied".into()),
        })
    }

    /// Look a path up for an edge from node `source`: `output`/`outputs`, `status`,
    /// `variables`, `inputs` and `nodes.<id>.{status,outputs}` name their roots; any other
    /// path is looked up in the source's outputs, then in the variables.
    fn resolve(&self, source: Option<usize>, path: &[Segment]) -> Option<Value> {
        let source_outputs = || {
            source
                .and_then(|s| self.node(s))
                .and_then(|st| st.outputs.clone())
                .map(Value::Object)
        };
        let variables = || Value::Object(self.state.variables.clone());
        let Some(Segment::Key(root)) = path.first() else {
            return None;
        };
        let rest = &path[1..];
        match root.as_str() {
            "output" | "outputs" => lookup(&source_outputs()?, rest).cloned(),
            "status" if rest.is_empty() => {
                source.and_then(|s| self.node(s)).map(|st| json!(st.status))
            }
            "variables" | "vars" => lookup(&variables(), rest).cloned(),
            "inputs" => lookup(self.inputs, rest).cloned(),
            "nodes" => {
                let Some(Segment::Key(id)) = rest.first() else {
                    return None;
                };
                let st = self.state.node(id)?;
                let doc = json!({"status": st.status, "outputs": st.outputs, "error": st.error});
                lookup(&doc, &rest[1..]).cloned()
            }
            _ => source_outputs()
                .and_then(|o| lookup(&o, path).cloned())
                .or_else(|| lookup(&variables(), path).cloned()),
        }
    }

    fn condition_holds(&self, c: &Condition, source: usize) -> bool {
        let value_at = |left: &str| {
            parse_path(left)
                .ok()
                .and_then(|p| self.resolve(Some(source), &p))
                .unwrap_or(Value::Null)
        };
        match c {
            Condition::Equals { left, right } => json_eq(&value_at(left), right),
            Condition::NotEquals { left, right } => !json_eq(&value_at(left), right),
            Condition::Contains { left, right } => match (value_at(left), right) {
                (Value::String(s), Value::String(needle)) => s.contains(needle.as_str()),
                (Value::Array(items), r) => items.iter().any(|v| json_eq(v, r)),
                (Value::Object(m), Value::String(k)) => m.contains_key(k),
                _ => false,
            },
            Condition::Regex { left, pattern } => {
                value_at(left).as_str().is_some_and(|s| pattern.is_match(s))
            }
            Condition::Truthy { left } => truthy(&value_at(left)),
            Condition::Falsy { left } => !truthy(&value_at(left)),
            Condition::Expression(e) => truthy(&e.eval(&|p| self.resolve(Some(source), p))),
        }
    }

    /// The values of node `i`'s input ports; a required one without a value fails the node.
    pub fn resolve_inputs(&self, i: usize) -> Result<Map<String, Value>, ErrorObject> {
        let node = &self.wf.nodes[i];
        let mut out = Map::new();
        for (port, p) in &node.inputs {
            let (value, optional, what) = match p {
                Port::Static(v) => (Some(v.clone()), false, String::new()),
                Port::Expression(e) => (
                    Some(e.eval(&|path| self.resolve(None, path))),
                    false,
                    String::new(),
                ),
                Port::Variable { name, optional } => (
                    self.state.variables.get(name).cloned(),
                    *optional,
                    format!("variable {name:?} has no value"),
                ),
                Port::Connection {
                    node: src,
                    output_key,
                    optional,
                } => (
                    self.node(*src)
                        .and_then(|st| st.outputs.as_ref())
                        .and_then(|o| o.get(output_key))
                        .cloned(),
                    *optional,
                    format!(
                        "node {:?} produced no output {output_key:?}",
                        self.wf.nodes[*src].id
                    ),
                ),
            };
            match value {
                Some(v) => {
                    out.insert(port.clone(), v);
                }
                None if optional => {}
                None => {
                    return Err(ErrorObject {
                        code: "validation_error".into(),
                        message: format!("input {port:?} of node {:?}: {what}", node.id),
                        details: Some(json!({"nodeId": node.id, "port": port})),
                    })
                }
            }
        }
        Ok(out)
    }

    /// The run's outputs: the outputs of its completed sink nodes, merged in definition order.
    pub fn run_outputs(&self) -> Value {
        let mut outputs = Map::new();
        for (i, n) in self.wf.nodes.iter().enumerate() {
            if n.outgoing.is_empty() {
                if let Some(NodeState {
                    status: NodeStatus::Completed,
                    outputs: Some(o),
                    ..
                }) = self.node(i)
                {
                    outputs.extend(o.clone());
                }
            }
        }
        Value::Object(outputs)
    }
}
