//! The JSON contract between the engine and SQL, defined once: what `openwop._claim` returns
//! for each run it hands a worker (`ClaimedRun`), and what `openwop._apply` writes back for
//! each stepped run (`StepOutput`: events, timers, the new projection). The SQL side reads
//! and writes exactly these field names (`sql/schema/0007_engine.sql`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::state::RunState;
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
    pub current_node_id: Option<String>,
    #[serde(default)]
    pub started_at_us: Option<i64>,
    #[serde(default)]
    pub fired_timers: Vec<FiredTimer>,
}

impl ClaimedRun {
    /// The run's state as its row stores it. A row that does not parse breaks an invariant.
    pub fn state(&self) -> Result<RunState, String> {
        Ok(RunState {
            status: self.status.clone(),
            next_seq: self.next_seq,
            variables: self.variables.clone(),
            node_states: RunState::node_states_from_json(&self.node_states)?,
            node_executions: self.node_executions,
            current_node_id: self.current_node_id.clone(),
            // Only a finished run has these, and a finished run is never claimed.
            outputs: None,
            error: None,
            started_at_us: self.started_at_us,
            completed_at_us: None,
        })
    }
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
    /// When it was due (epoch microseconds).
    #[serde(default)]
    pub due_at_us: Option<i64>,
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

impl RunRow {
    /// The row `openwop._apply` writes for a run in `state`.
    pub fn from_state(
        tenant_id: String,
        run_id: String,
        state: RunState,
        deadline_at_us: Option<i64>,
        runnable: bool,
    ) -> RunRow {
        let terminal = is_terminal_status(&state.status);
        RunRow {
            tenant_id,
            run_id,
            node_states: state.node_states_json(),
            status: state.status,
            next_seq: state.next_seq,
            variables: state.variables,
            node_executions: state.node_executions,
            current_node_id: state.current_node_id,
            outputs: state.outputs,
            error: state.error,
            started_at_us: state.started_at_us,
            completed_at_us: state.completed_at_us,
            deadline_at_us,
            runnable: runnable && !terminal,
            terminal,
        }
    }
}

/// An event as `openwop.state_at` reads it from the log.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    pub seq: i32,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub node_id: Option<String>,
    #[serde(default)]
    pub payload: Value,
    pub ts_us: i64,
}

#[derive(Debug, Clone)]
pub struct StepOutput {
    pub events: Vec<EventRow>,
    pub timers: Vec<TimerRow>,
    pub run: RunRow,
}
