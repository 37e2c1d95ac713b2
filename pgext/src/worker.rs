//! The background workers: each claims batches of ready runs (`openwop._claim`, FOR UPDATE
//! SKIP LOCKED), steps every run of the batch in memory (`engine::step`), and writes all the
//! events, timers and projections back with one `openwop._apply` call, in one transaction.
//! Between batches it sleeps on its latch, woken at commit by `wake.rs`, by its next due
//! timer, or by the safety poll.
//!
//! Crash safety comes from the transaction: a claim is a row lock, so a worker that dies
//! mid-batch leaves nothing half-written and its runs become claimable again; a node that
//! was mid-flight simply runs again from its start.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags,
};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};

use crate::engine::clock::now_us;
use crate::engine::model::{compile, Definition, Workflow};
use crate::engine::nodes::ErrorObject;
use crate::engine::step::{fail_unexecutable, step, ClaimedRun, StepOutput};
use crate::guc;
use crate::wake::{self, BUSY, IDLE};

/// NOTIFY payloads must stay under 8000 bytes; chunks of "run:seq" pairs stay well below.
const NOTIFY_CHUNK_BYTES: usize = 7000;

/// Register the worker pool (from `_PG_init`, when preloaded).
pub fn register() {
    for i in 0..guc::WORKERS.get() {
        BackgroundWorkerBuilder::new(&format!("openwop worker {i}"))
            .set_type("openwop worker")
            .set_library("openwop")
            .set_function("openwop_worker_main")
            .set_argument(Some(pg_sys::Datum::from(i as usize)))
            .enable_spi_access()
            .set_start_time(BgWorkerStartTime::RecoveryFinished)
            .set_restart_time(Some(Duration::from_secs(1)))
            .load();
    }
}

thread_local! {
    /// Compiled workflow revisions. Revisions are immutable, so entries never go stale.
    static DEFINITIONS: RefCell<HashMap<(String, String, i32), Option<Rc<Workflow>>>> = RefCell::new(HashMap::new());
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn openwop_worker_main(arg: pg_sys::Datum) {
    let index = arg.value();
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi(Some(&guc::database()), None);

    let shared = wake::shared().expect("openwop workers run only when preloaded");
    let slot = &shared.slots[index];
    unsafe {
        pg_sys::before_shmem_exit(Some(unpublish), pg_sys::Datum::from(index));
        slot.pid.store(pg_sys::MyProcPid, Ordering::Relaxed);
        // Publish before the first drain: anything committed earlier is seen by that drain.
        slot.procno
            .store((*pg_sys::MyProc).pgprocno, Ordering::Release);
    }
    slot.starts.fetch_add(1, Ordering::Relaxed);
    log!(
        "openwop worker {index} started (database {})",
        guc::database()
    );

    loop {
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        slot.state.store(BUSY, Ordering::Release);
        let next_ready_us = drain(slot);
        unsafe { pg_sys::pgstat_report_stat(false) };
        slot.state.store(IDLE, Ordering::Release);

        let poll = Duration::from_millis(guc::POLL_MS.get().max(10) as u64);
        let sleep = match next_ready_us {
            Some(at) => poll.min(Duration::from_micros((at - now_us()).max(0) as u64 + 500)),
            None => poll,
        };
        let before = now_us();
        if !BackgroundWorker::wait_latch(Some(sleep)) {
            break;
        }
        if now_us() - before >= sleep.as_micros() as i64 {
            slot.timeouts.fetch_add(1, Ordering::Relaxed);
        } else {
            slot.latch_wakes.fetch_add(1, Ordering::Relaxed);
        }
    }
    log!("openwop worker {index} stopping");
    // Exit code 1: a worker stopped by pg_terminate_backend is restarted (at shutdown nothing is).
    unsafe { pg_sys::proc_exit(1) };
}

#[pg_guard]
unsafe extern "C-unwind" fn unpublish(_code: i32, arg: pg_sys::Datum) {
    if let Some(sh) = wake::shared() {
        let slot = &sh.slots[arg.value()];
        slot.procno.store(-1, Ordering::Release);
        slot.state.store(BUSY, Ordering::Release);
    }
}

/// Step batches until none is left. Returns when the next run becomes ready, if known.
fn drain(slot: &wake::Slot) -> Option<i64> {
    let installed = in_transaction(|| {
        Spi::get_one::<bool>("SELECT to_regprocedure('openwop._claim(integer)') IS NOT NULL")
            .map_err(|e| e.to_string())
    });
    if installed != Ok(Some(true)) {
        return None; // the extension is not installed (yet): idle until the poll
    }
    loop {
        match in_transaction(process_batch) {
            Ok((0, _)) => break,
            Ok((runs, events)) => {
                slot.batches.fetch_add(1, Ordering::Relaxed);
                slot.runs_stepped.fetch_add(runs as u64, Ordering::Relaxed);
                slot.events_written
                    .fetch_add(events as u64, Ordering::Relaxed);
            }
            Err(message) => {
                slot.errors.fetch_add(1, Ordering::Relaxed);
                warning!("openwop worker: batch failed and was rolled back: {message}");
                return None; // back off until the poll; the runs stay claimable
            }
        }
    }
    in_transaction(|| {
        Spi::get_one::<i64>("SELECT (extract(epoch FROM openwop._next_ready()) * 1000000)::bigint")
            .map_err(|e| e.to_string())
    })
    .ok()
    .flatten()
}

/// Run `f` in its own transaction and commit only if it returns Ok. A Postgres error or a
/// panic rolls the transaction back and comes back as `Err` instead of killing the worker.
fn in_transaction<R>(
    f: impl FnOnce() -> Result<R, String> + std::panic::UnwindSafe,
) -> Result<R, String> {
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = PgTryBuilder::new(f)
        .catch_others(|e| {
            Err(match e {
                pg_sys::panic::CaughtError::PostgresError(r)
                | pg_sys::panic::CaughtError::ErrorReport(r) => r.message().to_string(),
                pg_sys::panic::CaughtError::RustPanic { ereport, .. } => {
                    ereport.message().to_string()
                }
            })
        })
        .execute();
    unsafe {
        match result {
            Ok(_) => {
                pg_sys::PopActiveSnapshot();
                pg_sys::CommitTransactionCommand();
            }
            Err(_) => pg_sys::AbortCurrentTransaction(),
        }
    }
    result
}

/// Claim one batch, step it, write it back. Returns (runs stepped, events written).
fn process_batch() -> Result<(usize, usize), String> {
    Spi::connect_mut(|client| {
        let batch = guc::BATCH_SIZE.get();
        let claimed = client
            .update("SELECT openwop._claim($1)", None, &[batch.into()])
            .map_err(|e| e.to_string())?
            .first()
            .get_one::<JsonB>()
            .map_err(|e| e.to_string())?
            .map(|j| j.0)
            .unwrap_or(Value::Array(vec![]));
        let Value::Array(items) = claimed else {
            return Ok((0, 0));
        };
        if items.is_empty() {
            return Ok((0, 0));
        }
        let budget = guc::STEP_BUDGET.get().max(1) as u32;
        let mut outputs: Vec<StepOutput> = Vec::with_capacity(items.len());
        for item in items {
            let run: ClaimedRun =
                serde_json::from_value(item).map_err(|e| format!("unreadable claimed run: {e}"))?;
            let key = (run.tenant_id.clone(), run.workflow_id.clone(), run.revision);
            let workflow = match DEFINITIONS.with(|d| d.borrow().get(&key).cloned()) {
                Some(w) => w,
                None => {
                    let def = client
                        .select(
                            "SELECT openwop._definition($1, $2, $3)",
                            None,
                            &[key.0.clone().into(), key.1.clone().into(), key.2.into()],
                        )
                        .map_err(|e| e.to_string())?
                        .first()
                        .get_one::<JsonB>()
                        .map_err(|e| e.to_string())?;
                    let compiled = def
                        .and_then(|d| serde_json::from_value::<Definition>(d.0).ok())
                        .and_then(|d| compile(&d).ok())
                        .map(Rc::new);
                    DEFINITIONS.with(|d| d.borrow_mut().insert(key.clone(), compiled.clone()));
                    compiled
                }
            };
            let mut clock = now_us;
            let out = match workflow {
                Some(wf) => {
                    let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        step(run.clone(), &wf, &mut now_us, budget)
                    }));
                    match stepped {
                        Ok(out) => out,
                        Err(_) => fail_unexecutable(
                            run,
                            &empty_workflow(),
                            &mut clock,
                            ErrorObject::new(
                                "internal_error",
                                "the engine could not execute this run",
                            ),
                        ),
                    }
                }
                None => fail_unexecutable(
                    run,
                    &empty_workflow(),
                    &mut clock,
                    ErrorObject::new(
                        "internal_error",
                        "the run's workflow definition is missing or unreadable",
                    ),
                ),
            };
            outputs.push(out);
        }
        let runs = outputs.len();
        let events: usize = outputs.iter().map(|o| o.events.len()).sum();
        let payload = apply_payload(outputs);
        client
            .update("SELECT openwop._apply($1)", None, &[JsonB(payload).into()])
            .map_err(|e| e.to_string())?;
        Ok((runs, events))
    })
}

fn empty_workflow() -> Workflow {
    Workflow {
        id: String::new(),
        nodes: vec![],
        edges: vec![],
        order: vec![],
    }
}

/// The argument of `openwop._apply`: every row of the batch plus the NOTIFY payloads.
fn apply_payload(outputs: Vec<StepOutput>) -> Value {
    let mut notify: Vec<String> = Vec::new();
    let mut chunk = String::new();
    let (mut events, mut timers, mut runs) = (Vec::new(), Vec::new(), Vec::new());
    for out in outputs {
        if let Some(last) = out.events.last() {
            let pair = format!("{}:{}", last.run_id, last.seq);
            if !chunk.is_empty() && chunk.len() + pair.len() + 1 > NOTIFY_CHUNK_BYTES {
                notify.push(std::mem::take(&mut chunk));
            }
            if !chunk.is_empty() {
                chunk.push(',');
            }
            chunk.push_str(&pair);
        }
        events.extend(out.events);
        timers.extend(out.timers);
        runs.push(out.run);
    }
    if !chunk.is_empty() {
        notify.push(chunk);
    }
    json!({ "events": events, "timers": timers, "runs": runs, "notify": notify })
}
