//! One worker step of one run: given the run's claimed state and its workflow, execute as
//! many nodes as possible (until the run suspends on a timer, ends, or spends its step
//! budget) and return the events to append, the timers to arm and the new projection.
//!
//! The stepper decides; it changes the run only by recording events, each folded into the
//! state by `reducer::apply` as it is recorded, so the projection it returns is the fold of
//! the log by construction. Pure: no SPI. The worker loads state with one claim query per
//! batch and writes every step of the batch back with one apply call.

use serde_json::{json, Map, Value};

use super::clock::parse_iso;
use super::contract::{ClaimedRun, EventRow, RunRow, StepOutput, TimerRow};
use super::model::Workflow;
use super::nodes::{self, delay_outputs, ErrorObject, Outcome};
use super::reducer::{self, Event};
use super::schedule::Schedule;
use super::state::RunState;
use crate::protocol::{is_terminal_status, EventType};

/// Step one claimed run from its state (`ClaimedRun::state`). `clock` returns epoch
/// microseconds (tests pass a fake one); `budget` is the most nodes this step may visit.
pub fn step(
    run: ClaimedRun,
    state: RunState,
    wf: &Workflow,
    clock: &mut dyn FnMut() -> i64,
    budget: u32,
) -> StepOutput {
    let mut s = Stepper::new(run, state, wf, clock);
    s.advance(budget);
    s.finish()
}

/// The failure of a run whose step could not be computed at all (its definition is gone or
/// unreadable): fail it cleanly instead of leaving it claimable forever.
pub fn fail_unexecutable(
    run: ClaimedRun,
    state: RunState,
    wf_placeholder: &Workflow,
    clock: &mut dyn FnMut() -> i64,
    error: ErrorObject,
) -> StepOutput {
    let mut s = Stepper::new(run, state, wf_placeholder, clock);
    if !is_terminal_status(&s.state.status) {
        s.fail_run(error, None);
    }
    s.finish()
}

struct Stepper<'a> {
    /// The run's identity and configuration (its state lives in `state`).
    run: ClaimedRun,
    wf: &'a Workflow,
    clock: &'a mut dyn FnMut() -> i64,
    /// Changed only by `record`, through the reducer.
    state: RunState,
    events: Vec<EventRow>,
    timers: Vec<TimerRow>,
    runnable: bool,
}

impl<'a> Stepper<'a> {
    fn new(
        run: ClaimedRun,
        state: RunState,
        wf: &'a Workflow,
        clock: &'a mut dyn FnMut() -> i64,
    ) -> Self {
        Stepper {
            run,
            wf,
            clock,
            state,
            events: Vec::new(),
            timers: Vec::new(),
            runnable: false,
        }
    }

    fn now(&mut self) -> i64 {
        (self.clock)()
    }

    fn schedule(&self) -> Schedule<'_> {
        Schedule {
            wf: self.wf,
            state: &self.state,
            inputs: &self.run.inputs,
        }
    }

    /// Append an event and fold it into the state. Returns its timestamp.
    fn record(&mut self, kind: EventType, node_id: Option<&str>, payload: Value) -> i64 {
        let ts_us = self.now();
        let row = EventRow {
            tenant_id: self.run.tenant_id.clone(),
            run_id: self.run.run_id.clone(),
            seq: self.state.next_seq,
            kind,
            node_id: node_id.map(str::to_string),
            payload,
            ts_us,
        };
        reducer::apply(
            &mut self.state,
            Event {
                seq: row.seq,
                kind,
                node_id: row.node_id.as_deref(),
                payload: &row.payload,
                ts_us,
            },
        );
        self.events.push(row);
        ts_us
    }

    fn duration_ms(&mut self) -> i64 {
        let now = self.now();
        self.state
            .started_at_us
            .map_or(0, |s| (now - s).max(0) / 1000)
    }

    fn deadline_us(&self) -> Option<i64> {
        self.state
            .started_at_us
            .map(|s| s + self.run.limits.run_timeout_ms.max(1) * 1000)
    }

    fn advance(&mut self, budget: u32) {
        if is_terminal_status(&self.state.status) {
            return; // a stale wake-up: nothing to do
        }
        if let Some(request) = self.run.cancel_request.clone() {
            self.cancel_run(&request);
            return;
        }
        if self.state.started_at_us.is_none() {
            self.start_run();
        }
        if let Some(deadline) = self.deadline_us() {
            if self.now() >= deadline {
                self.time_out();
                return;
            }
        }
        self.finish_fired_delays();
        let mut visited = 0;
        while let Some(i) = self.schedule().next_ready_node() {
            if visited == budget {
                self.runnable = true;
                return;
            }
            visited += 1;
            if !self.visit(i) {
                return; // the run ended
            }
        }
        if !self.state.has_running_node() {
            self.complete_run();
        }
    }

    fn start_run(&mut self) {
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
        self.record(EventType::RunStarted, None, payload);
        if let Some(deadline) = self.deadline_us() {
            self.timers
                .push(self.timer("deadline", String::new(), deadline));
        }
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

    /// Execute or skip node `i`. Returns false when the run ended.
    fn visit(&mut self, i: usize) -> bool {
        let wf = self.wf;
        let node = &wf.nodes[i];
        if node.disabled {
            self.skip(i, "node is disabled".into());
            return true;
        }
        if let Err(reason) = self.schedule().trigger_verdict(i) {
            self.skip(i, reason);
            return true;
        }
        let limit = self.run.limits.max_node_executions;
        if self.state.node_executions + 1 > limit {
            let observed = self.state.node_executions + 1;
            self.record(
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
        let outcome = self.schedule().resolve_inputs(i);
        let started = self.record(
            EventType::NodeStarted,
            Some(&node.id),
            json!({"nodeId": node.id, "typeId": node.type_id, "attempt": 0}),
        );
        match outcome.map_or_else(Outcome::Failed, |inputs| nodes::execute(node, inputs)) {
            Outcome::Completed(outputs) => {
                self.complete_node(i, started, outputs);
                true
            }
            Outcome::Wait { delay_ms } => {
                // The node stays running; its timer makes the run ready again.
                let due = started + delay_ms * 1000;
                self.timers.push(self.timer("delay", node.id.clone(), due));
                true
            }
            Outcome::Failed(error) => self.fail_node(i, error),
        }
    }

    fn complete_node(&mut self, i: usize, started: i64, outputs: Map<String, Value>) {
        let node_id = self.wf.nodes[i].id.clone();
        let now = self.now();
        self.record(
            EventType::NodeCompleted,
            Some(&node_id),
            json!({"nodeId": node_id, "outputs": outputs, "durationMs": (now - started).max(0) / 1000}),
        );
    }

    /// Record a node failure. Returns false when it failed the run (no edge routes it).
    fn fail_node(&mut self, i: usize, error: ErrorObject) -> bool {
        let wf = self.wf;
        let node_id = wf.nodes[i].id.clone();
        self.record(
            EventType::NodeFailed,
            Some(&node_id),
            json!({"nodeId": node_id, "error": error.to_json(), "attempts": 1}),
        );
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
        self.record(
            EventType::NodeSkipped,
            Some(&node_id),
            json!({"nodeId": node_id, "reason": reason}),
        );
    }

    /// Complete the delays whose timer fired (the claim consumed it).
    fn finish_fired_delays(&mut self) {
        for i in self.schedule().running_nodes() {
            let id = &self.wf.nodes[i].id;
            let Some(due) = self
                .run
                .fired_timers
                .iter()
                .find(|t| t.kind == "delay" && &t.node_id == id)
                .map(|t| t.due_at_us)
            else {
                continue;
            };
            let now = self.now();
            let due = due.unwrap_or(now);
            let started = self
                .schedule()
                .node(i)
                .and_then(|st| st.started_at.as_deref())
                .and_then(parse_iso)
                .unwrap_or(due);
            self.complete_node(i, started, delay_outputs((due - started).max(0) / 1000));
        }
    }

    /// End in-flight nodes when the run ends.
    fn cancel_running_nodes(&mut self, reason: &str) {
        for i in self.schedule().running_nodes() {
            let node_id = self.wf.nodes[i].id.clone();
            self.record(
                EventType::NodeCancelled,
                Some(&node_id),
                json!({"nodeId": node_id, "reason": reason}),
            );
        }
    }

    fn time_out(&mut self) {
        let limit = self.run.limits.run_timeout_ms;
        let observed = self.duration_ms().max(limit + 1);
        let mut payload = json!({"kind": "run-duration", "limit": limit, "observed": observed});
        if let Some(n) = &self.state.current_node_id {
            payload["nodeId"] = json!(n);
        }
        self.record(EventType::CapBreached, None, payload);
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
        self.record(EventType::RunFailed, None, payload);
    }

    fn cancel_run(&mut self, request: &Value) {
        self.cancel_running_nodes("run_cancelled");
        let mut payload = json!({"durationMs": self.duration_ms()});
        for key in ["reason", "cancelledBy"] {
            if let Some(v) = request.get(key) {
                payload[key] = v.clone();
            }
        }
        self.record(EventType::RunCancelled, None, payload);
    }

    fn complete_run(&mut self) {
        let outputs = self.schedule().run_outputs();
        let duration = self.duration_ms();
        self.record(
            EventType::RunCompleted,
            None,
            json!({"outputs": outputs, "durationMs": duration}),
        );
    }

    fn finish(self) -> StepOutput {
        let deadline_at_us = self.deadline_us();
        StepOutput {
            events: self.events,
            timers: self.timers,
            run: RunRow::from_state(
                self.run.tenant_id,
                self.run.run_id,
                self.state,
                deadline_at_us,
                self.runnable,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::{compile, Definition};
    use crate::engine::reducer::fold;

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
            "startedAtUs": r.started_at_us, "currentNodeId": r.current_node_id,
            "firedTimers": fired.iter().map(|(k, n)| {
                let due = prev.timers.iter().find(|t| t.kind == *k && t.node_id == *n).map(|t| t.due_us);
                json!({"kind": k, "nodeId": n, "dueAtUs": due})
            }).collect::<Vec<_>>()
        }))
        .unwrap()
    }

    /// Step a claimed run from the state its row holds, as the worker does.
    fn stepped(
        run: ClaimedRun,
        wf: &Workflow,
        clock: &mut dyn FnMut() -> i64,
        budget: u32,
    ) -> StepOutput {
        let state = run.state().expect("a well-formed claim");
        step(run, state, wf, clock, budget)
    }

    /// The state a projection row describes.
    fn projection(r: &RunRow) -> RunState {
        RunState {
            status: r.status.clone(),
            next_seq: r.next_seq,
            variables: r.variables.clone(),
            node_states: RunState::node_states_from_json(&r.node_states).unwrap(),
            node_executions: r.node_executions,
            current_node_id: r.current_node_id.clone(),
            outputs: r.outputs.clone(),
            error: r.error.clone(),
            started_at_us: r.started_at_us,
            completed_at_us: r.completed_at_us,
        }
    }

    /// The projection after `steps` (in order) is the fold of all their events from the run's
    /// first state.
    fn assert_folds(variables: Value, steps: &[&StepOutput]) {
        let events = steps.iter().flat_map(|s| s.events.iter()).map(|e| Event {
            seq: e.seq,
            kind: e.kind,
            node_id: e.node_id.as_deref(),
            payload: &e.payload,
            ts_us: e.ts_us,
        });
        let genesis = RunState::genesis(variables.as_object().cloned().unwrap_or_default());
        let last = steps.last().expect("a step");
        assert_eq!(fold(genesis, events), projection(&last.run));
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
        let out = stepped(claimed(json!({})), &wf, &mut fixed_clock(1_000_000), 100);
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
        assert_folds(json!({}), &[&out]);
    }

    #[test]
    fn failure_fails_the_run_unless_an_edge_routes_it() {
        let wf =
            workflow(json!({"id": "w", "nodes": [node("f", "core.fail", json!({}), json!({}))]}));
        let out = stepped(claimed(json!({})), &wf, &mut fixed_clock(0), 100);
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
        assert_folds(json!({}), &[&out]);
        assert_eq!(out.run.current_node_id.as_deref(), Some("f"));

        let routed = workflow(json!({"id": "w", "nodes": [
            node("f", "core.fail", json!({}), json!({})), node("ok", "core.noop", json!({}), json!({})), node("recover", "core.noop", json!({}), json!({}))],
            "edges": [{"id": "e1", "sourceNodeId": "f", "targetNodeId": "ok"},
                      {"id": "e2", "sourceNodeId": "f", "targetNodeId": "recover", "triggerRule": "any_failed"}]}));
        let out = stepped(claimed(json!({})), &routed, &mut fixed_clock(0), 100);
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
        assert_folds(json!({}), &[&out]);
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
        let out = stepped(claimed(json!({"n": 3})), &wf, &mut fixed_clock(0), 100);
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
        assert_folds(json!({"n": 3}), &[&out]);
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
            let out = stepped(
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
        let first = stepped(
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
        let early = stepped(reclaim(&first, &[]), &wf, &mut fixed_clock(100), 100);
        assert!(early.events.is_empty());
        // The timer fired: the delay completes and the run goes on.
        let second = stepped(
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
        assert_folds(json!({"delayMs": 500}), &[&first]);
        assert_folds(json!({"delayMs": 500}), &[&first, &second]);
        assert_eq!(second.run.current_node_id, None);
    }

    #[test]
    fn cancel_ends_in_flight_nodes_and_the_run() {
        let wf = workflow(
            json!({"id": "w", "nodes": [node("wait", "core.delay", json!({}), json!({"delayMs": 10000}))]}),
        );
        let first = stepped(claimed(json!({})), &wf, &mut fixed_clock(0), 100);
        let mut again = reclaim(&first, &[]);
        again.cancel_request = Some(json!({"reason": "user asked", "cancelledBy": "alice"}));
        let out = stepped(again, &wf, &mut fixed_clock(1000), 100);
        assert_eq!(types(&out), ["node.cancelled:wait", "run.cancelled"]);
        assert_eq!(out.events[1].payload["reason"], "user asked");
        assert_eq!(out.run.status, "cancelled");
        assert!(out.run.terminal);
        assert_folds(json!({}), &[&first, &out]);
        // A cancel that arrives before the run started ends it without a run.started.
        let mut pending = claimed(json!({}));
        pending.cancel_request = Some(json!({}));
        assert_eq!(
            types(&stepped(pending, &wf, &mut fixed_clock(0), 100)),
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
        let out = stepped(run, &wf, &mut fixed_clock(0), 100);
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
        assert_folds(json!({}), &[&out]);
    }

    #[test]
    fn run_deadline_breaches_and_fails() {
        let wf = workflow(
            json!({"id": "w", "nodes": [node("wait", "core.delay", json!({}), json!({"delayMs": 100000}))]}),
        );
        let mut run = claimed(json!({}));
        run.limits.run_timeout_ms = 50;
        let first = stepped(run, &wf, &mut fixed_clock(0), 100);
        let mut again = reclaim(&first, &[("deadline", "")]);
        again.limits.run_timeout_ms = 50;
        let out = stepped(again, &wf, &mut fixed_clock(60_000), 100);
        assert_eq!(
            types(&out),
            ["cap.breached", "node.cancelled:wait", "run.failed"]
        );
        assert_eq!(out.events[0].payload["kind"], "run-duration");
        assert_eq!(out.run.error.as_ref().unwrap()["code"], "run_timeout");
        assert_folds(json!({}), &[&first, &out]);
    }

    #[test]
    fn budget_spent_leaves_the_run_runnable() {
        let wf = workflow(
            json!({"id": "w", "nodes": [node("a", "core.noop", json!({}), json!({})), node("b", "core.noop", json!({}), json!({}))],
            "edges": [{"id": "e", "sourceNodeId": "a", "targetNodeId": "b"}]}),
        );
        let first = stepped(claimed(json!({})), &wf, &mut fixed_clock(0), 1);
        assert_eq!(
            types(&first),
            ["run.started", "node.started:a", "node.completed:a"]
        );
        assert!(first.run.runnable);
        let second = stepped(reclaim(&first, &[]), &wf, &mut fixed_clock(100), 1);
        assert_eq!(
            types(&second),
            ["node.started:b", "node.completed:b", "run.completed"]
        );
        assert_eq!(second.events[0].seq, 3);
        assert_folds(json!({}), &[&first, &second]);
    }

    #[test]
    fn identity_passes_payload_and_unresolved_inputs_fail_the_node() {
        let wf = workflow(
            json!({"id": "w", "variables": [{"name": "payload", "type": "object"}],
            "nodes": [node("echo", "core.identity", json!({"payload": {"type": "variable", "variableName": "payload"}}), json!({}))]}),
        );
        let out = stepped(
            claimed(json!({"payload": {"nested": [1, {"x": null}]}})),
            &wf,
            &mut fixed_clock(0),
            100,
        );
        assert_eq!(
            out.run.outputs,
            Some(json!({"payload": {"nested": [1, {"x": null}]}}))
        );
        let out = stepped(claimed(json!({})), &wf, &mut fixed_clock(0), 100);
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
