//! The background workers: each claims batches of ready runs (`openwop._claim`, FOR UPDATE
//! SKIP LOCKED), steps every run of the batch in memory (`engine::step`), and writes all the
//! events, timers and projections back with one `openwop._apply` call, in one transaction.
//! Between batches it sleeps on its latch, woken at commit by `wake.rs`, by its next due
//! timer, or by the safety poll.
//!
//! Crash safety comes from the transaction: a claim is a row lock, so a worker that dies
//! mid-batch leaves nothing half-written and its runs become claimable again; a node that
//! was mid-flight simply runs again from its start.

use std::cell::{Cell, RefCell};
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
use crate::engine::contract::{ClaimedRun, StepOutput};
use crate::engine::model::{compile, Definition, Workflow};
use crate::engine::nodes::ErrorObject;
use crate::engine::step::{fail_unexecutable, step};
use crate::guc;
use crate::protocol::EventType;
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

/// (tenant, workflow id, revision): a workflow revision, immutable once written.
type RevisionKey = (String, String, i32);

thread_local! {
    /// Compiled workflow revisions. Revisions are immutable, so entries never go stale.
    static DEFINITIONS: RefCell<HashMap<RevisionKey, Option<Rc<Workflow>>>> = RefCell::new(HashMap::new());
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

thread_local! {
    /// The extension was found installed (re-checked after any failure).
    static INSTALLED: Cell<bool> = const { Cell::new(false) };
    /// After a failed batch, this many batches run one run at a time to find the culprit.
    static ISOLATE: Cell<usize> = const { Cell::new(0) };
    /// (tenant, run id) of the runs in the batch being stepped, for quarantine.
    static IN_FLIGHT: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// A claimed run that was not stepped because its row breaks an invariant: (tenant, run id,
/// what is wrong). It is quarantined after the batch commits.
type Broken = (String, String, String);

/// What one worker transaction did.
enum Batch {
    Stepped {
        runs: usize,
        events: usize,
        broken: Vec<Broken>,
    },
    /// Nothing was ready; the next run becomes ready at this epoch-µs instant, if any.
    Empty { next_ready_us: Option<i64> },
}

/// A failed transaction: why, and whether waiting may help (resources, shutdown,
/// connection trouble) as opposed to a run that cannot be stepped.
struct Failure {
    message: String,
    transient: bool,
}

/// Step batches until none is left. Returns when the next run becomes ready, if known.
fn drain(slot: &wake::Slot) -> Option<i64> {
    if !INSTALLED.get() {
        let found = in_transaction(|| {
            Spi::get_one::<bool>("SELECT to_regprocedure('openwop._claim(integer)') IS NOT NULL")
                .map_err(|e| e.to_string())
        });
        if !matches!(found, Ok(Some(true))) {
            return None; // the extension is not installed (yet): idle until the poll
        }
        INSTALLED.set(true);
    }
    loop {
        let size = if ISOLATE.get() > 0 {
            1
        } else {
            guc::BATCH_SIZE.get().max(1)
        };
        match in_transaction(|| process_batch(size)) {
            Ok(Batch::Empty { next_ready_us }) => return next_ready_us,
            Ok(Batch::Stepped {
                runs,
                events,
                broken,
            }) => {
                ISOLATE.set(ISOLATE.get().saturating_sub(1));
                slot.batches.fetch_add(1, Ordering::Relaxed);
                slot.runs_stepped.fetch_add(runs as u64, Ordering::Relaxed);
                slot.events_written
                    .fetch_add(events as u64, Ordering::Relaxed);
                for (tenant, run, why) in broken {
                    slot.errors.fetch_add(1, Ordering::Relaxed);
                    quarantine(&tenant, &run, &why);
                }
            }
            Err(failure) => {
                slot.errors.fetch_add(1, Ordering::Relaxed);
                let attempted = IN_FLIGHT.take();
                warning!(
                    "openwop worker: a batch of {} run(s) failed and was rolled back: {}",
                    attempted.len(),
                    failure.message
                );
                if failure.transient || attempted.is_empty() {
                    INSTALLED.set(false);
                    return None; // back off until the poll; every run stays claimable
                }
                if attempted.len() > 1 {
                    ISOLATE.set(attempted.len()); // retry them one at a time
                    continue;
                }
                // This run fails even alone: fail it cleanly so it stops blocking the queue.
                let (tenant, run) = attempted[0].clone();
                quarantine(&tenant, &run, &failure.message);
            }
        }
    }
}

/// Fail a run that cannot be stepped (`openwop._quarantine`, in its own transaction). Should
/// even that fail, postpone the run instead, so that it never holds up the runs behind it.
fn quarantine(tenant: &str, run: &str, why: &str) {
    let args = || -> Vec<pgrx::datum::DatumWithOid<'static>> {
        vec![
            tenant.to_string().into(),
            run.to_string().into(),
            why.to_string().into(),
            EventType::RunFailed.name().into(),
        ]
    };
    let quarantined = in_transaction(|| {
        Spi::get_one_with_args::<bool>("SELECT openwop._quarantine($1, $2::uuid, $3, $4)", &args())
            .map_err(|e| e.to_string())
    });
    match quarantined {
        Ok(Some(true)) => warning!("openwop worker: run {run} failed with internal_error: {why}"),
        Ok(_) => {} // already finished, perhaps by another worker
        Err(e) => {
            warning!(
                "openwop worker: run {run} could not be quarantined ({}); postponed for 5 minutes",
                e.message
            );
            let _ = in_transaction(|| {
                Spi::run_with_args(
                    "SELECT openwop._park($1, $2::uuid, interval '5 minutes')",
                    &args()[..2],
                )
                .map_err(|e| e.to_string())
            });
        }
    }
}

/// Run `f` in its own transaction and commit only if it returns Ok. A Postgres error or a
/// panic rolls the transaction back and comes back as `Err` instead of killing the worker.
fn in_transaction<R>(
    f: impl FnOnce() -> Result<R, String> + std::panic::UnwindSafe,
) -> Result<R, Failure> {
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = PgTryBuilder::new(|| {
        f().map_err(|message| Failure {
            message,
            transient: false,
        })
    })
    .catch_others(|e| {
        Err(match e {
            pg_sys::panic::CaughtError::PostgresError(r)
            | pg_sys::panic::CaughtError::ErrorReport(r) => Failure {
                message: r.message().to_string(),
                transient: is_transient(r.sql_error_code()),
            },
            pg_sys::panic::CaughtError::RustPanic { ereport, .. } => Failure {
                message: ereport.message().to_string(),
                transient: false,
            },
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

/// Error classes where waiting may help: insufficient resources (53), operator intervention
/// (57), connection (08), transaction rollback (40), lock not available (55), system (58),
/// and undefined objects (42P01/42883: the extension is being dropped or replaced).
fn is_transient(code: PgSqlErrorCode) -> bool {
    let sqlstate = unsafe { std::ffi::CStr::from_ptr(pg_sys::unpack_sql_state(code as i32)) }
        .to_string_lossy()
        .into_owned();
    ["53", "57", "08", "40", "55", "58"]
        .iter()
        .any(|c| sqlstate.starts_with(c))
        || sqlstate == "42P01"
        || sqlstate == "42883"
}

/// Claim up to `size` runs, step them, write them back, all in the current transaction.
fn process_batch(size: i32) -> Result<Batch, String> {
    IN_FLIGHT.with(|f| f.borrow_mut().clear());
    Spi::connect_mut(|client| {
        let claimed = client
            .update("SELECT openwop._claim($1)", None, &[size.into()])
            .map_err(|e| e.to_string())?
            .first()
            .get_one::<JsonB>()
            .map_err(|e| e.to_string())?
            .map(|j| j.0)
            .unwrap_or(Value::Array(vec![]));
        let items = match claimed {
            Value::Array(items) if !items.is_empty() => items,
            _ => {
                // Idle: a moment for housekeeping timers, then tell the caller when to wake.
                client
                    .update("SELECT openwop._maintain()", None, &[])
                    .map_err(|e| e.to_string())?;
                let next_ready_us = client
                    .select(
                        "SELECT (extract(epoch FROM openwop._next_ready()) * 1000000)::bigint",
                        None,
                        &[],
                    )
                    .map_err(|e| e.to_string())?
                    .first()
                    .get_one::<i64>()
                    .map_err(|e| e.to_string())?;
                return Ok(Batch::Empty { next_ready_us });
            }
        };
        let budget = guc::STEP_BUDGET.get().max(1) as u32;
        let mut outputs: Vec<StepOutput> = Vec::with_capacity(items.len());
        let mut broken: Vec<Broken> = Vec::new();
        for item in items {
            let id = |k: &str| {
                item.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let (tenant, run_id) = (id("tenantId"), id("runId"));
            IN_FLIGHT.with(|f| f.borrow_mut().push((tenant.clone(), run_id.clone())));
            // A row that breaks an invariant is set aside, not stepped: stepping it would fail
            // the whole batch, for every tenant.
            let (counter, log) = (item.get("nextSeq"), item.get("logNextSeq"));
            if counter != log {
                let show = |v: Option<&Value>| v.map_or("missing".into(), Value::to_string);
                let why = format!(
                    "next_seq is {} but the log continues at {}",
                    show(counter),
                    show(log)
                );
                broken.push((tenant, run_id, why));
                continue;
            }
            let decoded = serde_json::from_value::<ClaimedRun>(item)
                .map_err(|e| e.to_string())
                .and_then(|run| run.state().map(|state| (run, state)));
            let (run, state) = match decoded {
                Ok(pair) => pair,
                Err(e) => {
                    broken.push((tenant, run_id, format!("unreadable run row: {e}")));
                    continue;
                }
            };
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
                        step(run.clone(), state.clone(), &wf, &mut now_us, budget)
                    }));
                    match stepped {
                        Ok(out) => out,
                        Err(_) => fail_unexecutable(
                            run,
                            state,
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
                    state,
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
        Ok(Batch::Stepped {
            runs,
            events,
            broken,
        })
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
