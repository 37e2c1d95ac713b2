//! SQL functions implemented in Rust. The SQL API itself (`start_run`, `run`, ...) is plain
//! SQL in `sql/schema/`; these are the pieces SQL cannot do well or at all.

use std::sync::atomic::Ordering;

use pgrx::prelude::*;
use pgrx::JsonB;

use crate::definition_check;
use crate::guc;
use crate::run_options;
use crate::schema_cache;
use crate::wake;

/// A time-ordered UUID (version 7): new rows land at the right edge of their indexes.
#[pg_extern(volatile, parallel_safe)]
fn _uuid_v7() -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*uuid::Uuid::now_v7().as_bytes())
}

/// The role that called into the SQL API: the session's current role (its login role, or
/// the one `SET ROLE` chose). Unlike `current_user` it is not changed by SECURITY DEFINER
/// functions, so the API functions, which run as the engine's own role, still know whose
/// tenant they act for.
#[pg_extern(stable, parallel_safe)]
fn _caller() -> String {
    unsafe {
        let name = pg_sys::GetUserNameFromId(pg_sys::GetOuterUserId(), false);
        std::ffi::CStr::from_ptr(name)
            .to_string_lossy()
            .into_owned()
    }
}

/// The run statuses that are final (`protocol::TERMINAL_STATUSES`), for SQL. Immutable, so
/// a query's `status = ANY (openwop._terminal_statuses())` is folded to a constant.
#[pg_extern(immutable, parallel_safe)]
fn _terminal_statuses() -> Vec<&'static str> {
    crate::protocol::TERMINAL_STATUSES.to_vec()
}

/// Fold a stored log (`[{seq, type, nodeId, payload, tsUs}]`, in order) onto a run's first
/// state (its starting variables) with the engine's reducer, and return the state as the row
/// `openwop._apply` would write (`RunRow`). For `openwop.state_at`.
#[pg_extern(immutable, parallel_safe)]
fn _fold(variables: JsonB, events: JsonB) -> JsonB {
    use crate::engine::contract::{RunRow, StoredEvent};
    use crate::engine::reducer::apply_stored;
    use crate::engine::state::RunState;
    let events: Vec<StoredEvent> = match serde_json::from_value(events.0) {
        Ok(e) => e,
        Err(e) => pgrx::error!("openwop._fold: unreadable events: {e}"),
    };
    let mut state = RunState::genesis(variables.0.as_object().cloned().unwrap_or_default());
    for e in &events {
        apply_stored(&mut state, e);
    }
    let row = RunRow::from_state(String::new(), String::new(), state, None, false);
    JsonB(serde_json::to_value(row).unwrap_or(serde_json::Value::Null))
}

/// Wake the workers when the current transaction commits (nothing happens if it aborts).
#[pg_extern(volatile)]
fn _wake_at_commit() {
    wake::wake_at_commit(1);
}

/// NULL when `definition` is an acceptable workflow definition, else
/// `{"message": ..., "details": {"field": ...}}` describing the first problem.
#[pg_extern(immutable, parallel_safe)]
fn _check_definition(definition: JsonB) -> Option<JsonB> {
    definition_check::check(&definition.0).map(JsonB)
}

/// Resolve a run's limits from its `configurable` overlay (NULL: none) and the workflow's own
/// timeout: `{"maxNodeExecutions", "runTimeoutMs", "maxLoopIterations"}`, or the refusal
/// `{"status", "code", "message", "details"}`.
#[pg_extern(stable, parallel_safe)]
fn _resolve_limits(configurable: Option<JsonB>, workflow_timeout_ms: i64) -> JsonB {
    let conf = configurable.map(|j| j.0).unwrap_or(serde_json::Value::Null);
    JsonB(
        match run_options::resolve(&conf, workflow_timeout_ms, &guc::host_limits()) {
            Ok(l) => serde_json::json!({
                "maxNodeExecutions": l.max_node_executions,
                "runTimeoutMs": l.run_timeout_ms,
                "maxLoopIterations": l.max_loop_iterations,
            }),
            Err(refusal) => refusal.to_json(),
        },
    )
}

/// The discovery `configurable` advertisement (reserved keys and bounds).
#[pg_extern(stable, parallel_safe)]
fn _advertised_configurable() -> JsonB {
    JsonB(run_options::advertised(&guc::host_limits()))
}

/// NULL when `doc` satisfies the JSON Schema `schema`, else `{"message", "field"}` for the
/// first violation. Compiled schemas are kept per backend.
#[pg_extern(immutable, parallel_safe)]
fn _check_json_schema(schema: JsonB, doc: JsonB) -> Option<JsonB> {
    schema_cache::check(&schema.0, &doc.0).map(JsonB)
}

/// The conformance fixture definitions shipped with the extension.
#[pg_extern(immutable, parallel_safe)]
fn _fixture_definitions() -> SetOfIterator<'static, JsonB> {
    const SOURCES: &[&str] = &[
        include_str!("../../sql/fixtures/conformance-noop.json"),
        include_str!("../../sql/fixtures/conformance-identity.json"),
        include_str!("../../sql/fixtures/conformance-delay.json"),
        include_str!("../../sql/fixtures/conformance-failure.json"),
        include_str!("../../sql/fixtures/conformance-multi-node.json"),
        include_str!("../../sql/fixtures/conformance-cancellable.json"),
        include_str!("../../sql/fixtures/conformance-idempotent.json"),
    ];
    SetOfIterator::new(
        SOURCES
            .iter()
            .map(|s| JsonB(serde_json::from_str(s).expect("fixture JSON is valid"))),
    )
}

/// One row per worker slot: who it is and what it has done since the cluster started.
#[pg_extern(volatile)]
#[allow(clippy::type_complexity)]
fn worker_stats() -> TableIterator<
    'static,
    (
        name!(slot, i32),
        name!(pid, Option<i32>),
        name!(state, String),
        name!(starts, i64),
        name!(batches, i64),
        name!(runs_stepped, i64),
        name!(events_written, i64),
        name!(latch_wakes, i64),
        name!(timeouts, i64),
        name!(errors, i64),
    ),
> {
    let rows: Vec<_> = match wake::shared() {
        None => vec![],
        Some(sh) => (0..crate::guc::WORKERS.get())
            .map(|i| {
                let s = &sh.slots[i as usize];
                let live = s.procno.load(Ordering::Acquire) >= 0;
                let state = match (live, s.state.load(Ordering::Acquire)) {
                    (false, _) => "stopped",
                    (true, wake::IDLE) => "idle",
                    (true, wake::WOKEN) => "woken",
                    _ => "busy",
                };
                let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as i64;
                (
                    i,
                    live.then(|| s.pid.load(Ordering::Relaxed)),
                    state.to_string(),
                    n(&s.starts),
                    n(&s.batches),
                    n(&s.runs_stepped),
                    n(&s.events_written),
                    n(&s.latch_wakes),
                    n(&s.timeouts),
                    n(&s.errors),
                )
            })
            .collect(),
    };
    TableIterator::new(rows)
}

/// Commit-time wake-up counters: transactions that woke workers, latches set, and wake-ups
/// with no live worker to receive them.
#[pg_extern(volatile)]
fn wake_stats() -> TableIterator<
    'static,
    (
        name!(commit_wakes, i64),
        name!(latches_set, i64),
        name!(no_worker, i64),
    ),
> {
    let row = wake::shared().map_or((0, 0, 0), |sh| {
        (
            sh.commit_wakes.load(Ordering::Relaxed) as i64,
            sh.latches_set.load(Ordering::Relaxed) as i64,
            sh.no_worker.load(Ordering::Relaxed) as i64,
        )
    });
    TableIterator::once(row)
}
