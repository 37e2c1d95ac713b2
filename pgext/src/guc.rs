//! The extension's settings (`openwop.*`). Defined in `_PG_init`; the SQL side reads the
//! few it needs with `current_setting`.

use std::ffi::CString;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Background workers executing runs (postmaster: restart to change).
pub static WORKERS: GucSetting<i32> = GucSetting::<i32>::new(2);
/// The database the workers serve (postmaster).
pub static DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
/// Safety-net poll of an idle worker, in ms. Work is normally signalled at commit.
pub static POLL_MS: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// Most runs one worker transaction claims.
pub static BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(200);
/// Most nodes one run executes per worker transaction before yielding.
pub static STEP_BUDGET: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// Host limit on node executions per run (discovery limits.maxNodeExecutions).
pub static MAX_NODE_EXECUTIONS: GucSetting<i32> = GucSetting::<i32>::new(100);
/// Host limit on a run's duration in ms (discovery limits.maxRunDurationMs).
pub static MAX_RUN_DURATION_MS: GucSetting<i32> = GucSetting::<i32>::new(3_600_000);
/// Host limit on loop iterations per run (discovery limits.maxLoopIterations).
pub static MAX_LOOP_ITERATIONS: GucSetting<i32> = GucSetting::<i32>::new(100);
/// How long Idempotency-Key records are kept, in seconds (at least 24 h).
pub static IDEMPOTENCY_RETENTION_S: GucSetting<i32> = GucSetting::<i32>::new(86_400);
/// Lease of a pending Idempotency-Key record that spans transactions, in ms.
pub static IDEMPOTENCY_LEASE_MS: GucSetting<i32> = GucSetting::<i32>::new(30_000);
/// The tenant a SQL session acts as (see `openwop.current_tenant()`).
pub static TENANT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

pub const MAX_WORKERS: i32 = 32;

/// Define the settings. Postmaster-level ones can only be defined while preloading; when the
/// library is loaded later (CREATE EXTENSION without preloading) they are left out.
pub fn define(preloading: bool) {
    if preloading {
        define_postmaster();
    }
    define_runtime();
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"openwop".as_ptr()) };
}

fn define_postmaster() {
    GucRegistry::define_int_guc(
        c"openwop.workers",
        c"Number of openwop background workers.",
        c"Workers claim runnable runs with FOR UPDATE SKIP LOCKED. Needs a restart.",
        &WORKERS,
        1,
        MAX_WORKERS,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"openwop.database",
        c"Database whose openwop runs the workers execute.",
        c"The workers idle until CREATE EXTENSION openwop has run there. Needs a restart.",
        &DATABASE,
        GucContext::Postmaster,
        GucFlags::default(),
    );
}

fn define_runtime() {
    GucRegistry::define_int_guc(
        c"openwop.poll_ms",
        c"Safety-net poll interval of an idle worker (ms).",
        c"Workers are woken at commit; this poll only covers wake-ups that could not be delivered.",
        &POLL_MS,
        10,
        600_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"openwop.batch_size",
        c"Most runs one worker transaction claims.",
        c"",
        &BATCH_SIZE,
        1,
        10_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"openwop.step_budget",
        c"Most nodes a run executes in one worker transaction.",
        c"A run with work left after its budget is stepped again in a later transaction.",
        &STEP_BUDGET,
        1,
        1_000_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"openwop.max_node_executions",
        c"Host limit on node executions per run.",
        c"A run that would exceed it records cap.breached and fails with recursion_limit_exceeded.",
        &MAX_NODE_EXECUTIONS,
        1,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"openwop.max_run_duration_ms",
        c"Host limit on a run's duration (ms).",
        c"A run past it records cap.breached and fails with run_timeout.",
        &MAX_RUN_DURATION_MS,
        1000,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"openwop.max_loop_iterations",
        c"Host limit on loop iterations per run.",
        c"The ceiling of configurable.maxLoopIterations.",
        &MAX_LOOP_ITERATIONS,
        1,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"openwop.idempotency_retention_s",
        c"How long Idempotency-Key records are kept (seconds, at least 86400).",
        c"Expired records are removed by the engine's sweep timer.",
        &IDEMPOTENCY_RETENTION_S,
        86_400,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"openwop.idempotency_lease_ms",
        c"Lease of a pending Idempotency-Key record (ms).",
        c"A pending record whose lease has passed may be taken over by a retry.",
        &IDEMPOTENCY_LEASE_MS,
        100,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"openwop.tenant",
        c"Tenant this session acts as in the openwop SQL API.",
        c"Defaults to 'default'.",
        &TENANT,
        GucContext::Userset,
        GucFlags::default(),
    );
}

/// The host ceilings the run options overlay is clamped to.
pub fn host_limits() -> crate::run_options::HostLimits {
    crate::run_options::HostLimits {
        max_node_executions: MAX_NODE_EXECUTIONS.get() as i64,
        max_run_duration_ms: MAX_RUN_DURATION_MS.get() as i64,
        max_loop_iterations: MAX_LOOP_ITERATIONS.get() as i64,
    }
}

/// The configured database name.
pub fn database() -> String {
    DATABASE
        .get()
        .and_then(|c| c.into_string().ok())
        .unwrap_or_else(|| "postgres".into())
}
