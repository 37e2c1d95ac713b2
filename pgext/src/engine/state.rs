//! A run's state: what `openwop.runs` holds beside the run's identity and configuration, and
//! exactly what folding the run's event log yields (`reducer::apply`). Only the reducer
//! changes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Per-node state, the snapshot's `nodeStates` entry.
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

/// The run's state. `Default` is the state before its first event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunState {
    pub status: String,
    /// The next sequence to allocate: one past the last event folded.
    pub next_seq: i32,
    pub variables: Map<String, Value>,
    pub node_states: BTreeMap<String, NodeState>,
    pub node_executions: i64,
    pub current_node_id: Option<String>,
    pub outputs: Option<Value>,
    pub error: Option<Value>,
    pub started_at_us: Option<i64>,
    pub completed_at_us: Option<i64>,
}

impl RunState {
    /// The state of a run that has no events yet: pending, with its starting variables (the
    /// workflow's defaults overlaid with the run's inputs, fixed when it was created).
    pub fn genesis(variables: Map<String, Value>) -> RunState {
        RunState {
            status: "pending".into(),
            variables,
            ..RunState::default()
        }
    }

    pub fn node(&self, id: &str) -> Option<&NodeState> {
        self.node_states.get(id)
    }

    pub fn has_running_node(&self) -> bool {
        self.node_states
            .values()
            .any(|n| n.status == NodeStatus::Running)
    }

    /// `node_states` as the JSON object stored in the row and shown on the snapshot.
    pub fn node_states_json(&self) -> Map<String, Value> {
        self.node_states
            .iter()
            .map(|(id, st)| (id.clone(), serde_json::to_value(st).unwrap_or(Value::Null)))
            .collect()
    }

    /// Read `node_states` back from the stored JSON; an entry that does not parse is an
    /// error (the row breaks an invariant).
    pub fn node_states_from_json(
        json: &Map<String, Value>,
    ) -> Result<BTreeMap<String, NodeState>, String> {
        json.iter()
            .map(|(id, v)| {
                serde_json::from_value(v.clone())
                    .map(|st| (id.clone(), st))
                    .map_err(|e| format!("node state {id:?}: {e}"))
            })
            .collect()
    }
}
