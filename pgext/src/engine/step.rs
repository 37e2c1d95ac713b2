//! One worker step of one run: given the run's claimed state and its workflow, execute as
//! many nodes as possible (until the run suspends on a timer, ends, or spends its step
//! budget) and return the events to append, the timers to arm and the new projection.
//!
//! Pure: no SPI. The worker loads state with one claim query per batch and writes every
//! step of the batch back with one apply call, so a step costs no round trips of its own.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::clock::{iso, parse_iso};
use super::expr::{json_eq, lookup, parse_path, truthy, Segment};
use super::model::{Condition, Port, TriggerRule, Workflow};
use super::nodes::{self, delay_outputs, ErrorObject, Outcome};
use crate::protocol::{is_terminal_status, EventType};

/// A run as `openwop._claim` returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedRun {
    pub tenant_id: String,
    pub run_id: String,
    pub workflow_id: String,
    pub revision: i32,
    pub status: String,
    pub next_seq: i32,
    #[serde(default)]
    pub inputs: Value,
    #[serde(default)]
    pub variables: Map<String, Value>,
    #[serde(default)]
    pub node_states: Map<String, Value>,
    #[serde(default)]
    pub node_executions: i64,
    #[serde(default)]
    pub owner: Value,
    #[serde(default)]
    pub options: Value,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub cancel_request: Option<Value>,
    #[serde(default)]
    pub started_at_us: Option<i64>,
    #[serde(default)]
    pub deadline_at_us: Option<i64>,
    #[serde(default)]
    pub fired_timers: Vec<FiredTimer>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub max_node_executions: i64,
    pub run_timeout_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_node_executions: 100,
            run_timeout_ms: 3_600_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FiredTimer {
    pub kind: String,
    pub node_id: String,
}

/// Per-node state, stored in `runs.node_states` and shown as the snapshot's `nodeStates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeState {
    pub status: NodeStatus,
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// Started and not finished: a delay waiting for its timer.
    Running,
    Completed,
    Failed,
    Skipped,
    Cancelled,
}

/// One event to append (a row for `openwop._apply`).
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub tenant_id: String,
    pub run_id: String,
    pub seq: i32,
    #[serde(rename = "type", serialize_with = "event_name")]
    pub kind: EventType,
    pub node_id: Option<String>,
    pub payload: Value,
    pub ts_us: i64,
}

fn event_name<S: serde::Serializer>(kind: &EventType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

/// One timer to arm.
#[derive(Debug, Clone, Serialize)]
pub struct TimerRow {
    pub tenant_id: String,
    pub run_id: String,
    pub kind: &'static str,
    pub node_id: String,
    pub due_us: i64,
}

/// The run's new projection.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub tenant_id: String,
    pub run_id: String,
    pub status: String,
    pub next_seq: i32,
    pub variables: Map<String, Value>,
    pub node_states: Map<String, Value>,
    pub node_executions: i64,
    pub current_node_id: Option<String>,
    pub outputs: Option<Value>,
    pub error: Option<Value>,
    pub started_at_us: Option<i64>,
    pub completed_at_us: Option<i64>,
    pub deadline_at_us: Option<i64>,
    /// Budget spent with work left: step it again at once.
    pub runnable: bool,
    pub terminal: bool,
}

#[derive(Debug, Clone)]
pub struct StepOutput {
    pub events: Vec<EventRow>,
    pub timers: Vec<TimerRow>,
    pub run: RunRow,
}

/// Step one claimed run. `clock` returns epoch microseconds (tests pass a fake one);
/// `budget` is the most nodes this step may visit.
pub fn step(
    run: ClaimedRun,
    wf: &Workflow,
    clock: &mut dyn FnMut() -> i64,
    budget: u32,
) -> StepOutput {
    let mut s = Stepper::new(run, wf, clock);
    s.advance(budget);
    s.finish()
}

/// The failure of a run whose step could not be computed at all (its definition is gone or
/// unreadable): fail it cleanly instead of leaving it claimable forever.
pub fn fail_unexecutable(
    run: ClaimedRun,
    wf_placeholder: &Workflow,
    clock: &mut dyn FnMut() -> i64,
    error: ErrorObject,
) -> StepOutput {
    let mut s = Stepper::new(run, wf_placeholder, clock);
    if !is_terminal_status(&s.status) {
        s.fail_run(error, None);
    }
    s.finish()
}

struct Stepper<'a> {
    run: ClaimedRun,
    wf: &'a Workflow,
    clock: &'a mut dyn FnMut() -> i64,
    states: Vec<Option<NodeState>>,
    events: Vec<EventRow>,
    timers: Vec<TimerRow>,
    status: String,
    current: Option<String>,
    outputs: Option<Value>,
    error: Option<Value>,
    completed_at_us: Option<i64>,
    runnable: bool,
}

impl<'a> Stepper<'a> {
    fn new(run: ClaimedRun, wf: &'a Workflow, clock: &'a mut dyn FnMut() -> i64) -> Self {
        let states = wf
            .nodes
            .iter()
            .map(|n| {
                run.node_states
                    .get(&n.id)
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
            })
            .collect();
        Stepper {
            status: run.status.clone(),
            run,
            wf,
            clock,
            states,
            events: Vec::new(),
            timers: Vec::new(),
            current: None,
            outputs: None,
            error: None,
            completed_at_us: None,
            runnable: false,
        }
    }

    fn now(&mut self) -> i64 {
        (self.clock)()
    }

    fn emit(&mut self, kind: EventType, node_id: Option<&str>, payload: Value) {
        let ts_us = self.now();
        self.events.push(EventRow {
            tenant_id: self.run.tenant_id.clone(),
            run_id: self.run.run_id.clone(),
            seq: self.run.next_seq,
            kind,
            node_id: node_id.map(str::to_string),
            payload,
            ts_us,
        });
        self.run.next_seq += 1;
    }

    fn duration_ms(&mut self) -> i64 {
        let now = self.now();
        self.run
            .started_at_us
            .map_or(0, |s| (now - s).max(0) / 1000)
    }

    fn advance(&mut self, budget: u32) {
        if is_terminal_status(&self.status) {
            return; // a stale wake-up: nothing to do
        }
        if let Some(request) = self.run.cancel_request.clone() {
            self.cancel_run(&request);
            return;
        }
        if self.status == "pending" {
            self.start_run();
        }
        if let Some(deadline) = self.run.deadline_at_us {
            if self.now() >= deadline {
                self.time_out(deadline);
                return;
            }
        }
        self.finish_due_delays();
        let mut visited = 0;
        while let Some(i) = self.next_ready_node() {
            if visited == budget {
                self.runnable = true;
                return;
            }
            visited += 1;
            if !self.visit(i) {
                return; // the run ended
            }
        }
        if let Some(i) = self
            .states
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.status == NodeStatus::Running))
        {
            self.status = "running".into();
            self.current = Some(self.wf.nodes[i].id.clone());
            return;
        }
        self.complete_run();
    }

    fn start_run(&mut self) {
        let now = self.now();
        self.run.started_at_us = Some(now);
        let deadline = now + self.run.limits.run_timeout_ms.max(1) * 1000;
        self.run.deadline_at_us = Some(deadline);
        self.timers
            .push(self.timer("deadline", String::new(), deadline));
        let opts = &self.run.options;
        let mut payload = json!({
            "workflowId": self.run.workflow_id,
            "inputs": self.run.inputs,
            "engineVersion": 1,
            "owner": self.run.owner,
        });
        for key in ["transport", "tags", "metadata"] {
            if let Some(v) = opts.get(key) {
                payload[key] = v.clone();
            }
        }
        self.emit(EventType::RunStarted, None, payload);
        self.status = "running".into();
    }

    fn timer(&self, kind: &'static str, node_id: String, due_us: i64) -> TimerRow {
        TimerRow {
            tenant_id: self.run.tenant_id.clone(),
            run_id: self.run.run_id.clone(),
            kind,
            node_id,
            due_us,
        }
    }

    /// A node whose state is unset and whose upstream nodes have all settled.
    fn next_ready_node(&self) -> Option<usize> {
        self.wf.order.iter().copied().find(|&i| {
            self.states[i].is_none()
                && self.wf.nodes[i].incoming.iter().all(|&e| {
                    self.states[self.wf.edges[e].source]
                        .as_ref()
                        .is_some_and(|s| s.status != NodeStatus::Running)
                })
        })
    }

    /// Execute or skip node `i`. Returns false when the run ended.
    fn visit(&mut self, i: usize) -> bool {
        let wf = self.wf;
        let node = &wf.nodes[i];
        if node.disabled {
            self.skip(i, "node is disabled".into());
            return true;
        }
        if let Err(reason) = self.trigger_verdict(i) {
            self.skip(i, reason);
            return true;
        }
        let limit = self.run.limits.max_node_executions;
        if self.run.node_executions + 1 > limit {
            let observed = self.run.node_executions + 1;
            self.emit(
                EventType::CapBreached,
                Some(&node.id),
                json!({"kind": "node-executions", "limit": limit, "observed": observed, "nodeId": node.id}),
            );
            self.fail_run(
                ErrorObject::new(
                    "recursion_limit_exceeded",
                    format!("the run would execute more than {limit} nodes"),
                ),
                None,
            );
            return false;
        }
        self.run.node_executions += 1;
        let started = self.now();
        self.emit(
            EventType::NodeStarted,
            Some(&node.id),
            json!({"nodeId": node.id, "typeId": node.type_id, "attempt": 0}),
        );
        self.current = Some(node.id.clone());
        let outcome = match self.resolve_inputs(i) {
            Ok(inputs) => nodes::execute(node, inputs),
            Err(e) => Outcome::Failed(e),
        };
        match outcome {
            Outcome::Completed(outputs) => {
                self.complete_node(i, started, outputs);
                true
            }
            Outcome::Wait { delay_ms } => {
                let due = started + delay_ms * 1000;
                self.states[i] = Some(NodeState {
                    status: NodeStatus::Running,
                    attempt: 0,
                    outputs: None,
                    error: None,
                    reason: None,
                    started_at: Some(iso(started)),
                    completed_at: None,
                    due_at: Some(iso(due)),
                });
                self.timers.push(self.timer("delay", node.id.clone(), due));
                true
            }
            Outcome::Failed(error) => self.fail_node(i, started, error),
        }
    }

    fn complete_node(&mut self, i: usize, started: i64, outputs: Map<String, Value>) {
        let node_id = self.wf.nodes[i].id.clone();
        let now = self.now();
        self.emit(
            EventType::NodeCompleted,
            Some(&node_id),
            json!({"nodeId": node_id, "outputs": outputs, "durationMs": (now - started).max(0) / 1000}),
        );
        self.states[i] = Some(NodeState {
            status: NodeStatus::Completed,
            attempt: 0,
            outputs: Some(outputs),
            error: None,
            reason: None,
            started_at: Some(iso(started)),
            completed_at: Some(iso(now)),
            due_at: None,
        });
    }

    /// Record a node failure. Returns false when it failed the run (no edge routes it).
    fn fail_node(&mut self, i: usize, started: i64, error: ErrorObject) -> bool {
        let wf = self.wf;
        let node_id = wf.nodes[i].id.clone();
        self.emit(
            EventType::NodeFailed,
            Some(&node_id),
            json!({"nodeId": node_id, "error": error.to_json(), "attempts": 1}),
        );
        let now = self.now();
        self.states[i] = Some(NodeState {
            status: NodeStatus::Failed,
            attempt: 0,
            outputs: None,
            error: Some(error.to_json()),
            reason: None,
            started_at: Some(iso(started)),
            completed_at: Some(iso(now)),
            due_at: None,
        });
        let routed = wf.nodes[i]
            .outgoing
            .iter()
            .any(|&e| wf.nodes[wf.edges[e].target].trigger_rule.admits_failure());
        if routed {
            return true;
        }
        self.fail_run(error, Some(node_id));
        false
    }

    fn skip(&mut self, i: usize, reason: String) {
        let node_id = self.wf.nodes[i].id.clone();
        self.emit(
            EventType::NodeSkipped,
            Some(&node_id),
            json!({"nodeId": node_id, "reason": reason}),
        );
        self.states[i] = Some(NodeState {
            status: NodeStatus::Skipped,
            attempt: 0,
            outputs: None,
            error: None,
            reason: Some(reason),
            started_at: None,
            completed_at: None,
            due_at: None,
        });
    }

    /// Complete delays whose timer fired (or whose due time has passed).
    fn finish_due_delays(&mut self) {
        let now = self.now();
        for i in 0..self.states.len() {
            let Some(st) = &self.states[i] else { continue };
            if st.status != NodeStatus::Running {
                continue;
            }
            let id = &self.wf.nodes[i].id;
            let fired = self
                .run
                .fired_timers
                .iter()
                .any(|t| t.kind == "delay" && &t.node_id == id);
            let due = st.due_at.as_deref().and_then(parse_iso);
            if fired || due.is_some_and(|d| d <= now) {
                let started = st.started_at.as_deref().and_then(parse_iso).unwrap_or(now);
                let delay_ms = due.map_or(0, |d| (d - started) / 1000);
                self.complete_node(i, started, delay_outputs(delay_ms));
            }
        }
    }

    /// Ok when node `i` should run; Err(reason) when its trigger rule says skip.
    fn trigger_verdict(&self, i: usize) -> Result<(), String> {
        let node = &self.wf.nodes[i];
        if node.incoming.is_empty() {
            return Ok(());
        }
        let (mut success, mut failed, mut first_reason) = (0, 0, None);
        for &e in &node.incoming {
            let edge = &self.wf.edges[e];
            let source = &self.wf.nodes[edge.source];
            let st = self.states[edge.source].as_ref().map(|s| s.status);
            let reason = match st {
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
                .and_then(|s| self.states[s].as_ref())
                .and_then(|st| st.outputs.clone())
                .map(Value::Object)
        };
        let Some(Segment::Key(root)) = path.first() else {
            return None;
        };
        let rest = &path[1..];
        match root.as_str() {
            "output" | "outputs" => lookup(&source_outputs()?, rest).cloned(),
            "status" if rest.is_empty() => source
                .and_then(|s| self.states[s].as_ref())
                .map(|st| json!(st.status)),
            "variables" | "vars" => {
                lookup(&Value::Object(self.run.variables.clone()), rest).cloned()
            }
            "inputs" => lookup(&self.run.inputs, rest).cloned(),
            "nodes" => {
                let Some(Segment::Key(id)) = rest.first() else {
                    return None;
                };
                let idx = self.wf.nodes.iter().position(|n| &n.id == id)?;
                let st = self.states[idx].as_ref()?;
                let doc = json!({"status": st.status, "outputs": st.outputs, "error": st.error});
                lookup(&doc, &rest[1..]).cloned()
            }
            _ => source_outputs()
                .and_then(|o| lookup(&o, path).cloned())
                .or_else(|| lookup(&Value::Object(self.run.variables.clone()), path).cloned()),
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

    fn resolve_inputs(&self, i: usize) -> Result<Map<String, Value>, ErrorObject> {
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
                    self.run.variables.get(name).cloned(),
                    *optional,
                    format!("variable {name:?} has no value"),
                ),
                Port::Connection {
                    node: src,
                    output_key,
                    optional,
                } => (
                    self.states[*src]
                        .as_ref()
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

    /// End in-flight nodes when the run ends.
    fn cancel_running_nodes(&mut self, reason: &str) {
        for i in 0..self.states.len() {
            if self.states[i]
                .as_ref()
                .is_some_and(|s| s.status == NodeStatus::Running)
            {
                let node_id = self.wf.nodes[i].id.clone();
                self.emit(
                    EventType::NodeCancelled,
                    Some(&node_id),
                    json!({"nodeId": node_id, "reason": reason}),
                );
                if let Some(st) = self.states[i].as_mut() {
                    st.status = NodeStatus::Cancelled;
                    st.reason = Some(reason.to_string());
                    st.due_at = None;
                }
            }
        }
    }

    fn time_out(&mut self, deadline: i64) {
        let limit = self.run.limits.run_timeout_ms;
        let observed = self.duration_ms().max(limit + 1);
        let _ = deadline;
        let mut payload = json!({"kind": "run-duration", "limit": limit, "observed": observed});
        if let Some(n) = &self.current {
            payload["nodeId"] = json!(n);
        }
        self.emit(EventType::CapBreached, None, payload);
        self.cancel_running_nodes("run_timeout");
        self.fail_run(
            ErrorObject::new(
                "run_timeout",
                format!("the run exceeded its maximum duration of {limit} ms"),
            ),
            None,
        );
    }

    fn fail_run(&mut self, error: ErrorObject, failed_node: Option<String>) {
        self.cancel_running_nodes("run_failed");
        let mut payload = json!({"error": error.to_json(), "durationMs": self.duration_ms()});
        if let Some(n) = &failed_node {
            payload["failedNodeId"] = json!(n);
        }
        self.emit(EventType::RunFailed, None, payload);
        self.status = "failed".into();
        self.error = Some(error.to_json());
        self.current = failed_node;
        self.completed_at_us = Some(self.now());
    }

    fn cancel_run(&mut self, request: &Value) {
        self.cancel_running_nodes("run_cancelled");
        let mut payload = json!({"durationMs": self.duration_ms()});
        for key in ["reason", "cancelledBy"] {
            if let Some(v) = request.get(key) {
                payload[key] = v.clone();
            }
        }
        self.emit(EventType::RunCancelled, None, payload);
        self.status = "cancelled".into();
        self.current = None;
        self.completed_at_us = Some(self.now());
    }

    fn complete_run(&mut self) {
        // The run's outputs: the outputs of its completed sink nodes, merged in definition order.
        let mut outputs = Map::new();
        for (i, n) in self.wf.nodes.iter().enumerate() {
            if n.outgoing.is_empty() {
                if let Some(NodeState {
                    status: NodeStatus::Completed,
                    outputs: Some(o),
                    ..
                }) = &self.states[i]
                {
                    outputs.extend(o.clone());
                }
            }
        }
        let outputs = Value::Object(outputs);
        let duration = self.duration_ms();
        self.emit(
            EventType::RunCompleted,
            None,
            json!({"outputs": outputs, "durationMs": duration}),
        );
        self.status = "completed".into();
        self.outputs = Some(outputs);
        self.current = None;
        self.completed_at_us = Some(self.now());
    }

    fn finish(self) -> StepOutput {
        let mut node_states = self.run.node_states.clone();
        for (n, st) in self.wf.nodes.iter().zip(&self.states) {
            if let Some(st) = st {
                node_states.insert(
                    n.id.clone(),
                    serde_json::to_value(st).unwrap_or(Value::Null),
                );
            }
        }
        let terminal = is_terminal_status(&self.status);
        StepOutput {
            events: self.events,
            timers: self.timers,
            run: RunRow {
                tenant_id: self.run.tenant_id,
                run_id: self.run.run_id,
                status: self.status,
                next_seq: self.run.next_seq,
                variables: self.run.variables,
                node_states,
                node_executions: self.run.node_executions,
                current_node_id: self.current,
                outputs: self.outputs,
                error: self.error,
                started_at_us: self.run.started_at_us,
                completed_at_us: self.completed_at_us,
                deadline_at_us: self.run.deadline_at_us,
                runnable: self.runnable && !terminal,
                terminal,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::{compile, Definition};

    fn workflow(v: Value) -> Workflow {
        let d: Definition = serde_json::from_value(v).unwrap();
        compile(&d).unwrap()
    }

    fn node(id: &str, type_id: &str, inputs: Value, config: Value) -> Value {
        json!({"id": id, "typeId": type_id, "name": id, "position": {"x": 0, "y": 0}, "config": config, "inputs": inputs})
    }

    fn claimed(inputs: Value) -> ClaimedRun {
        serde_json::from_value(json!({
            "tenantId": "t", "runId": "r", "workflowId": "w", "revision": 1, "status": "pending", "nextSeq": 0,
            "inputs": inputs, "variables": inputs, "nodeStates": {}, "nodeExecutions": 0,
            "owner": {"tenant": "t"}, "options": {"tags": ["x"]},
            "limits": {"maxNodeExecutions": 100, "runTimeoutMs": 60000}
        }))
        .unwrap()
    }

    /// Feed a step's output back as the next claim, as the database would.
    fn reclaim(prev: &StepOutput, fired: &[(&str, &str)]) -> ClaimedRun {
        let r = &prev.run;
        serde_json::from_value(json!({
            "tenantId": r.tenant_id, "runId": r.run_id, "workflowId": "w", "revision": 1, "status": r.status,
            "nextSeq": r.next_seq, "inputs": {}, "variables": r.variables, "nodeStates": r.node_states,
            "nodeExecutions": r.node_executions, "owner": {}, "options": {},
            "limits": {"maxNodeExecutions": 100, "runTimeoutMs": 60000},
            "startedAtUs": r.started_at_us, "deadlineAtUs": r.deadline_at_us,
            "firedTimers": fired.iter().map(|(k, n)| json!({"kind": k, "nodeId": n})).collect::<Vec<_>>()
        }))
        .unwrap()
    }

    fn types(out: &StepOutput) -> Vec<String> {
        out.events
            .iter()
            .map(|e| match &e.node_id {
                Some(n) => format!("{}:{n}", e.kind.name()),
                None => e.kind.name().to_string(),
            })
            .collect()
    }

    fn fixed_clock(start: i64) -> impl FnMut() -> i64 {
        let mut t = start;
        move || {
            t += 10;
            t
        }
    }

    #[test]
    fn linear_workflow_completes_in_one_step_with_gap_free_sequences() {
        let wf = workflow(json!({"id": "w", "nodes": [
            node("a", "core.noop", json!({}), json!({})), node("b", "core.noop", json!({}), json!({})), node("c", "core.noop", json!({}), json!({}))],
            "edges": [{"id": "ab", "sourceNodeId": "a", "targetNodeId": "b"}, {"id": "bc", "sourceNodeId": "b", "targetNodeId": "c"}]}));
        let out = step(claimed(json!({})), &wf, &mut fixed_clock(1_000_000), 100);
        assert_eq!(
            types(&out),
            [
                "run.started",
                "node.started:a",
                "node.completed:a",
                "node.started:b",
                "node.completed:b",
                "node.started:c",
                "node.completed:c",
                "run.completed"
            ]
        );
        assert!(out
            .events
            .iter()
            .enumerate()
            .all(|(i, e)| e.seq == i as i32));
        assert_eq!(out.run.status, "completed");
        assert!(out.run.terminal && !out.run.runnable);
        assert_eq!(out.run.next_seq, 8);
        assert_eq!(out.events[0].payload["tags"], json!(["x"]));
        assert_eq!(out.timers.len(), 1, "the run deadline is armed at start");
    }

    #[test]
    fn failure_fails_the_run_unless_an_edge_routes_it() {
        let wf =
            workflow(json!({"id": "w", "nodes": [node("f", "core.fail", json!({}), json!({}))]}));
        let out = step(claimed(json!({})), &wf, &mut fixed_clock(0), 100);
        assert_eq!(
            types(&out),
            [
                "run.started",
                "node.started:f",
                "node.failed:f",
                "run.failed"
            ]
        );
        assert_eq!(
            out.run.error.as_ref().unwrap()["code"],
            "conformance_test_failure"
        );
        assert_eq!(out.events[3].payload["failedNodeId"], "f");

        let routed = workflow(json!({"id": "w", "nodes": [
            node("f", "core.fail", json!({}), json!({})), node("ok", "core.noop", json!({}), json!({})), node("recover", "core.noop", json!({}), json!({}))],
            "edges": [{"id": "e1", "sourceNodeId": "f", "targetNodeId": "ok"},
                      {"id": "e2", "sourceNodeId": "f", "targetNodeId": "recover", "triggerRule": "any_failed"}]}));
        let out = step(claimed(json!({})), &routed, &mut fixed_clock(0), 100);
        assert_eq!(
            types(&out),
            [
                "run.started",
                "node.started:f",
                "node.failed:f",
                "node.skipped:ok",
                "node.started:recover",
                "node.completed:recover",
                "run.completed"
            ]
        );
    }

    #[test]
    fn false_conditions_skip_and_rules_decide() {
        let wf = workflow(
            json!({"id": "w", "variables": [{"name": "n", "type": "number"}],
            "nodes": [node("src", "core.identity", json!({"v": {"type": "variable", "variableName": "n"}}), json!({})),
                      node("big", "core.noop", json!({}), json!({})), node("small", "core.noop", json!({}), json!({})),
                      node("join", "core.noop", json!({}), json!({}))],
            "edges": [{"id": "e1", "sourceNodeId": "src", "targetNodeId": "big", "condition": {"type": "expression", "expression": "output.v > 10"}},
                      {"id": "e2", "sourceNodeId": "src", "targetNodeId": "small", "condition": {"type": "falsy", "left": "output.big"}},
                      {"id": "e3", "sourceNodeId": "big", "targetNodeId": "join", "triggerRule": "any_success"},
                      {"id": "e4", "sourceNodeId": "small", "targetNodeId": "join", "triggerRule": "any_success"}]}),
        );
        let out = step(claimed(json!({"n": 3})), &wf, &mut fixed_clock(0), 100);
        assert_eq!(
            types(&out),
            [
                "run.started",
                "node.started:src",
                "node.completed:src",
                "node.skipped:big",
                "node.started:small",
                "node.completed:small",
                "node.started:join",
                "node.completed:join",
                "run.completed"
            ]
        );
        assert!(out.events[3].payload["reason"]
            .as_str()
            .unwrap()
            .contains("e1"));
    }

    #[test]
    fn equals_contains_regex_conditions() {
        let mk = |cond: Value| {
            workflow(
                json!({"id": "w", "variables": [{"name": "s", "type": "string"}],
                "nodes": [node("a", "core.identity", json!({"s": {"type": "variable", "variableName": "s"}}), json!({})), node("b", "core.noop", json!({}), json!({}))],
                "edges": [{"id": "e", "sourceNodeId": "a", "targetNodeId": "b", "condition": cond}]}),
            )
        };
        let ran_b = |cond: Value| {
            let out = step(
                claimed(json!({"s": "hello world"})),
                &mk(cond),
                &mut fixed_clock(0),
                100,
            );
            types(&out).contains(&"node.completed:b".to_string())
        };
        assert!(ran_b(
            json!({"type": "equals", "left": "s", "right": "hello world"})
        ));
        assert!(!ran_b(
            json!({"type": "notEquals", "left": "output.s", "right": "hello world"})
        ));
        assert!(ran_b(
            json!({"type": "contains", "left": "s", "right": "world"})
        ));
        assert!(ran_b(
            json!({"type": "regex", "left": "s", "right": "^hel+o"})
        ));
        assert!(!ran_b(json!({"type": "truthy", "left": "output.nothing"})));
        assert!(ran_b(json!({"type": "truthy", "left": "variables.s"})));
    }

    #[test]
    fn delay_suspends_on_a_timer_then_resumes() {
        let wf = workflow(
            json!({"id": "w", "variables": [{"name": "delayMs", "type": "number"}],
            "nodes": [node("wait", "core.delay", json!({"delayMs": {"type": "variable", "variableName": "delayMs"}}), json!({})),
                      node("after", "core.noop", json!({}), json!({}))],
            "edges": [{"id": "e", "sourceNodeId": "wait", "targetNodeId": "after"}]}),
        );
        let first = step(
            claimed(json!({"delayMs": 500})),
            &wf,
            &mut fixed_clock(0),
            100,
        );
        assert_eq!(types(&first), ["run.started", "node.started:wait"]);
        assert_eq!(first.run.status, "running");
        assert_eq!(first.run.current_node_id.as_deref(), Some("wait"));
        assert!(!first.run.runnable && !first.run.terminal);
        let delay = first.timers.iter().find(|t| t.kind == "delay").unwrap();
        assert_eq!(delay.node_id, "wait");

        // Woken early (e.g. a spurious wake): nothing changes.
        let early = step(reclaim(&first, &[]), &wf, &mut fixed_clock(100), 100);
        assert!(early.events.is_empty());
        // The timer fired: the delay completes and the run goes on.
        let second = step(
            reclaim(&first, &[("delay", "wait")]),
            &wf,
            &mut fixed_clock(600_000),
            100,
        );
        assert_eq!(
            types(&second),
            [
                "node.completed:wait",
                "node.started:after",
                "node.completed:after",
                "run.completed"
            ]
        );
        assert_eq!(second.events[0].seq, 2);
        assert_eq!(second.events[0].payload["outputs"]["delayMs"], 500);
    }

    #[test]
    fn cancel_ends_in_flight_nodes_and_the_run() {
        let wf = workflow(
            json!({"id": "w", "nodes": [node("wait", "core.delay", json!({}), json!({"delayMs": 10000}))]}),
        );
        let first = step(claimed(json!({})), &wf, &mut fixed_clock(0), 100);
        let mut again = reclaim(&first, &[]);
        again.cancel_request = Some(json!({"reason": "user asked", "cancelledBy": "alice"}));
        let out = step(again, &wf, &mut fixed_clock(1000), 100);
        assert_eq!(types(&out), ["node.cancelled:wait", "run.cancelled"]);
        assert_eq!(out.events[1].payload["reason"], "user asked");
        assert_eq!(out.run.status, "cancelled");
        assert!(out.run.terminal);
        // A cancel that arrives before the run started ends it without a run.started.
        let mut pending = claimed(json!({}));
        pending.cancel_request = Some(json!({}));
        assert_eq!(
            types(&step(pending, &wf, &mut fixed_clock(0), 100)),
            ["run.cancelled"]
        );
    }

    #[test]
    fn node_execution_cap_breaches_and_fails() {
        let wf = workflow(
            json!({"id": "w", "nodes": [node("a", "core.noop", json!({}), json!({})), node("b", "core.noop", json!({}), json!({}))],
            "edges": [{"id": "e", "sourceNodeId": "a", "targetNodeId": "b"}]}),
        );
        let mut run = claimed(json!({}));
        run.limits.max_node_executions = 1;
        let out = step(run, &wf, &mut fixed_clock(0), 100);
        assert_eq!(
            types(&out),
            [
                "run.started",
                "node.started:a",
                "node.completed:a",
                "cap.breached:b",
                "run.failed"
            ]
        );
        assert_eq!(
            out.events[3].payload,
            json!({"kind": "node-executions", "limit": 1, "observed": 2, "nodeId": "b"})
        );
        assert_eq!(
            out.run.error.as_ref().unwrap()["code"],
            "recursion_limit_exceeded"
        );
    }

    #[test]
    fn run_deadline_breaches_and_fails() {
        let wf = workflow(
            json!({"id": "w", "nodes": [node("wait", "core.delay", json!({}), json!({"delayMs": 100000}))]}),
        );
        let mut run = claimed(json!({}));
        run.limits.run_timeout_ms = 50;
        let first = step(run, &wf, &mut fixed_clock(0), 100);
        let mut again = reclaim(&first, &[("deadline", "")]);
        again.limits.run_timeout_ms = 50;
        let out = step(again, &wf, &mut fixed_clock(60_000), 100);
        assert_eq!(
            types(&out),
            ["cap.breached", "node.cancelled:wait", "run.failed"]
        );
        assert_eq!(out.events[0].payload["kind"], "run-duration");
        assert_eq!(out.run.error.as_ref().unwrap()["code"], "run_timeout");
    }

    #[test]
    fn budget_spent_leaves_the_run_runnable() {
        let wf = workflow(
            json!({"id": "w", "nodes": [node("a", "core.noop", json!({}), json!({})), node("b", "core.noop", json!({}), json!({}))],
            "edges": [{"id": "e", "sourceNodeId": "a", "targetNodeId": "b"}]}),
        );
        let first = step(claimed(json!({})), &wf, &mut fixed_clock(0), 1);
        assert_eq!(
            types(&first),
            ["run.started", "node.started:a", "node.completed:a"]
        );
        assert!(first.run.runnable);
        let second = step(reclaim(&first, &[]), &wf, &mut fixed_clock(100), 1);
        assert_eq!(
            types(&second),
            ["node.started:b", "node.completed:b", "run.completed"]
        );
        assert_eq!(second.events[0].seq, 3);
    }

    #[test]
    fn identity_passes_payload_and_unresolved_inputs_fail_the_node() {
        let wf = workflow(
            json!({"id": "w", "variables": [{"name": "payload", "type": "object"}],
            "nodes": [node("echo", "core.identity", json!({"payload": {"type": "variable", "variableName": "payload"}}), json!({}))]}),
        );
        let out = step(
            claimed(json!({"payload": {"nested": [1, {"x": null}]}})),
            &wf,
            &mut fixed_clock(0),
            100,
        );
        assert_eq!(
            out.run.outputs,
            Some(json!({"payload": {"nested": [1, {"x": null}]}}))
        );
        let out = step(claimed(json!({})), &wf, &mut fixed_clock(0), 100);
        assert_eq!(
            types(&out),
            [
                "run.started",
                "node.started:echo",
                "node.failed:echo",
                "run.failed"
            ]
        );
        assert_eq!(out.run.error.as_ref().unwrap()["code"], "validation_error");
    }
}
