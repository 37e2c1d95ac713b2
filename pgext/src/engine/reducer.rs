//! The one thing that changes a run's state: `apply(state, event)`. Pure (no SPI, no clock):
//! the stepper records events through it, `openwop.state_at` folds a stored log with it, so
//! the projection in `openwop.runs` and the fold of the log are the same function's output.
//!
//! Everything folded comes from the event's own fields and the payload fields the protocol
//! defines for its type; timestamps come from the event.

use serde_json::{Map, Value};

use super::clock::iso;
use super::contract::StoredEvent;
use super::state::{NodeState, NodeStatus, RunState};
use crate::protocol::EventType;

/// One event as the reducer sees it: what is stored in `openwop.events`.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub seq: i32,
    pub kind: EventType,
    pub node_id: Option<&'a str>,
    pub payload: &'a Value,
    pub ts_us: i64,
}

/// Fold `event` into `state`.
pub fn apply(state: &mut RunState, event: Event<'_>) {
    state.next_seq = event.seq + 1;
    let p = event.payload;
    let text = |key: &str| p.get(key).and_then(Value::as_str).map(str::to_string);
    let node_id = event.node_id.map(str::to_string).or_else(|| text("nodeId"));
    match event.kind {
        EventType::RunStarted => {
            state.status = "running".into();
            state.started_at_us = Some(event.ts_us);
        }
        EventType::NodeStarted => {
            let Some(id) = node_id else { return };
            let attempt = p.get("attempt").and_then(Value::as_u64).unwrap_or(0) as u32;
            state.node_states.insert(
                id.clone(),
                NodeState {
                    status: NodeStatus::Running,
                    attempt,
                    outputs: None,
                    error: None,
                    reason: None,
                    started_at: Some(iso(event.ts_us)),
                    completed_at: None,
                },
            );
            state.node_executions += 1;
            state.current_node_id = Some(id);
        }
        EventType::NodeCompleted | EventType::NodeFailed => {
            let Some(id) = node_id else { return };
            let failed = event.kind == EventType::NodeFailed;
            let st = state.node_states.entry(id).or_insert_with(|| NodeState {
                status: NodeStatus::Running,
                attempt: 0,
                outputs: None,
                error: None,
                reason: None,
                started_at: None,
                completed_at: None,
            });
            if failed {
                st.status = NodeStatus::Failed;
                st.error = p.get("error").cloned();
            } else {
                st.status = NodeStatus::Completed;
                st.outputs = Some(
                    p.get("outputs")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_else(Map::new),
                );
            }
            st.completed_at = Some(iso(event.ts_us));
            follow_running_node(state);
        }
        EventType::NodeSkipped => {
            let Some(id) = node_id else { return };
            state.node_states.insert(
                id,
                NodeState {
                    status: NodeStatus::Skipped,
                    attempt: 0,
                    outputs: None,
                    error: None,
                    reason: text("reason"),
                    started_at: None,
                    completed_at: None,
                },
            );
        }
        EventType::NodeCancelled => {
            let Some(id) = node_id else { return };
            if let Some(st) = state.node_states.get_mut(&id) {
                st.status = NodeStatus::Cancelled;
                st.reason = text("reason");
            }
        }
        EventType::CapBreached => {}
        EventType::RunCompleted => {
            state.status = "completed".into();
            state.outputs = Some(p.get("outputs").cloned().unwrap_or(Value::Null));
            state.current_node_id = None;
            state.completed_at_us = Some(event.ts_us);
        }
        EventType::RunFailed => {
            state.status = "failed".into();
            state.error = p.get("error").cloned();
            state.current_node_id = text("failedNodeId");
            state.completed_at_us = Some(event.ts_us);
        }
        EventType::RunCancelled => {
            state.status = "cancelled".into();
            state.current_node_id = None;
            state.completed_at_us = Some(event.ts_us);
        }
    }
}

/// After a node settles, the run's current node is the one still running, if any: the run is
/// waiting on it. (Among several running nodes, the earliest started, then by id.)
fn follow_running_node(state: &mut RunState) {
    let current_running = state
        .current_node_id
        .as_deref()
        .and_then(|id| state.node_states.get(id))
        .is_some_and(|st| st.status == NodeStatus::Running);
    if current_running {
        return;
    }
    if let Some((id, _)) = state
        .node_states
        .iter()
        .filter(|(_, st)| st.status == NodeStatus::Running)
        .min_by(|a, b| (&a.1.started_at, a.0).cmp(&(&b.1.started_at, b.0)))
    {
        state.current_node_id = Some(id.clone());
    }
}

/// Fold one stored event, whatever its type: one the engine does not emit (a vendor's) only
/// takes its place in the sequence.
pub fn apply_stored(state: &mut RunState, e: &StoredEvent) {
    match EventType::from_name(&e.kind) {
        Some(kind) => apply(
            state,
            Event {
                seq: e.seq,
                kind,
                node_id: e.node_id.as_deref(),
                payload: &e.payload,
                ts_us: e.ts_us,
            },
        ),
        None => state.next_seq = e.seq + 1,
    }
}

/// Fold a whole log from the run's first state.
pub fn fold<'a>(genesis: RunState, events: impl IntoIterator<Item = Event<'a>>) -> RunState {
    let mut state = genesis;
    for e in events {
        apply(&mut state, e);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev<'a>(seq: i32, kind: EventType, node: Option<&'a str>, payload: &'a Value) -> Event<'a> {
        Event {
            seq,
            kind,
            node_id: node,
            payload,
            ts_us: 1_000_000 + seq as i64 * 1000,
        }
    }

    #[test]
    fn a_log_folds_into_the_run_it_describes() {
        let empty = json!({});
        let a_done = json!({"nodeId": "a", "outputs": {"x": 1}});
        let started = json!({"nodeId": "b", "typeId": "core.delay", "attempt": 0});
        let done = json!({"outputs": {"x": 1}});
        let s = fold(
            RunState::genesis(Map::new()),
            [
                ev(0, EventType::RunStarted, None, &empty),
                ev(1, EventType::NodeStarted, Some("a"), &empty),
                ev(2, EventType::NodeCompleted, Some("a"), &a_done),
                ev(3, EventType::NodeStarted, Some("b"), &started),
            ],
        );
        assert_eq!(s.status, "running");
        assert_eq!(s.next_seq, 4);
        assert_eq!(s.node_executions, 2);
        assert_eq!(s.current_node_id.as_deref(), Some("b"));
        assert_eq!(s.node("a").unwrap().outputs.as_ref().unwrap()["x"], 1);
        assert_eq!(s.node("b").unwrap().status, NodeStatus::Running);

        let mut s2 = s.clone();
        apply(&mut s2, ev(4, EventType::NodeCompleted, Some("b"), &empty));
        apply(&mut s2, ev(5, EventType::RunCompleted, None, &done));
        assert_eq!(s2.status, "completed");
        assert_eq!(s2.outputs, Some(json!({"x": 1})));
        assert_eq!(s2.current_node_id, None);
        assert_eq!(s2.completed_at_us, Some(1_005_000));
    }

    #[test]
    fn the_current_node_follows_what_the_run_waits_on() {
        let empty = json!({});
        let s = fold(
            RunState::genesis(Map::new()),
            [
                ev(0, EventType::RunStarted, None, &empty),
                ev(1, EventType::NodeStarted, Some("wait"), &empty),
                ev(2, EventType::NodeStarted, Some("quick"), &empty),
                ev(3, EventType::NodeCompleted, Some("quick"), &empty),
            ],
        );
        assert_eq!(s.current_node_id.as_deref(), Some("wait"));
        let failed = json!({"error": {"code": "x", "message": "y"}, "failedNodeId": "wait"});
        let mut f = s.clone();
        apply(&mut f, ev(4, EventType::NodeFailed, Some("wait"), &failed));
        apply(&mut f, ev(5, EventType::RunFailed, None, &failed));
        assert_eq!(f.status, "failed");
        assert_eq!(f.current_node_id.as_deref(), Some("wait"));
        assert_eq!(f.error.as_ref().unwrap()["code"], "x");
        assert_eq!(f.node("wait").unwrap().status, NodeStatus::Failed);
    }
}
