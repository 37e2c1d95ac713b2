//! Waking the workers at COMMIT of a transaction that made work (`start_run`, `cancel_run`),
//! so a run starts within a fraction of a millisecond instead of at the next poll.
//!
//! Each worker publishes its PGPROC number in a shared-memory slot. `_wake_at_commit()` notes
//! pending work in a backend-local list keyed by subtransaction; raw xact/subxact callbacks
//! (registered once per backend) drop the work of aborted (sub)transactions and, at
//! XACT_EVENT_COMMIT, when the rows are visible to every new snapshot, set the latch of up to
//! that many idle workers (or of one busy worker, whose next wait then returns at once).
//! Waking at PRE_COMMIT would lose wake-ups: the worker could look before the rows are visible.
//! A callback must never raise an error, so it only touches atomics and calls SetLatch.

use std::cell::RefCell;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use pgrx::prelude::*;
use pgrx::{PGRXSharedMemory, PgAtomic};

use crate::guc::MAX_WORKERS;

pub const IDLE: u32 = 0;
pub const BUSY: u32 = 1;
pub const WOKEN: u32 = 2;

/// One worker's published identity and counters.
pub struct Slot {
    pub procno: AtomicI32,
    pub pid: AtomicI32,
    pub state: AtomicU32,
    pub starts: AtomicU64,
    pub batches: AtomicU64,
    pub runs_stepped: AtomicU64,
    pub events_written: AtomicU64,
    pub latch_wakes: AtomicU64,
    pub timeouts: AtomicU64,
    pub errors: AtomicU64,
}

pub struct Shared {
    pub slots: [Slot; MAX_WORKERS as usize],
    pub commit_wakes: AtomicU64,
    pub latches_set: AtomicU64,
    pub no_worker: AtomicU64,
}

unsafe impl PGRXSharedMemory for Shared {}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

impl Shared {
    pub fn new() -> Self {
        Shared {
            slots: std::array::from_fn(|_| Slot {
                procno: AtomicI32::new(-1),
                pid: AtomicI32::new(0),
                state: AtomicU32::new(BUSY),
                starts: AtomicU64::new(0),
                batches: AtomicU64::new(0),
                runs_stepped: AtomicU64::new(0),
                events_written: AtomicU64::new(0),
                latch_wakes: AtomicU64::new(0),
                timeouts: AtomicU64::new(0),
                errors: AtomicU64::new(0),
            }),
            commit_wakes: AtomicU64::new(0),
            latches_set: AtomicU64::new(0),
            no_worker: AtomicU64::new(0),
        }
    }
}

pub static SHARED: PgAtomic<Shared> = unsafe { PgAtomic::new(c"openwop_shared") };

/// Set in `_PG_init` when loaded through shared_preload_libraries; shared memory (and so
/// commit-time wake-ups) exists only then. Otherwise work is found by the poll alone.
pub static mut PRELOADED: bool = false;

pub fn shared() -> Option<&'static Shared> {
    // SAFETY: PRELOADED is written once, in _PG_init, before any other code of ours runs.
    if unsafe { PRELOADED } {
        Some(SHARED.get())
    } else {
        None
    }
}

thread_local! {
    /// Work noted in this backend's open transaction: (subtransaction id, count).
    static PENDING: RefCell<Vec<(pg_sys::SubTransactionId, u32)>> = const { RefCell::new(Vec::new()) };
    static CALLBACKS_REGISTERED: RefCell<bool> = const { RefCell::new(false) };
}

/// Note that this transaction made work for the workers; they are woken if it commits.
pub fn wake_at_commit(n: u32) {
    if shared().is_none() {
        return;
    }
    CALLBACKS_REGISTERED.with(|r| {
        if !*r.borrow() {
            unsafe {
                pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut());
                pg_sys::RegisterSubXactCallback(Some(subxact_callback), std::ptr::null_mut());
            }
            *r.borrow_mut() = true;
        }
    });
    let sub = unsafe { pg_sys::GetCurrentSubTransactionId() };
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        match p.last_mut() {
            Some((s, c)) if *s == sub => *c = c.saturating_add(n),
            _ => p.push((sub, n)),
        }
    });
}

#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_COMMIT => {
            let n: u32 = PENDING.with(|p| {
                let mut p = p.borrow_mut();
                let n = p.iter().map(|e| e.1).fold(0u32, u32::saturating_add);
                p.clear();
                n
            });
            if n > 0 {
                wake_workers(n);
            }
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT
        | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
        | pg_sys::XactEvent::XACT_EVENT_PREPARE => PENDING.with(|p| p.borrow_mut().clear()),
        _ => {}
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn subxact_callback(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    parent_subid: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => {
            PENDING.with(|p| p.borrow_mut().retain(|e| e.0 != my_subid))
        }
        pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB => PENDING.with(|p| {
            for e in p.borrow_mut().iter_mut() {
                if e.0 == my_subid {
                    e.0 = parent_subid;
                }
            }
        }),
        _ => {}
    }
}

/// Set the latch of up to `n` idle workers; if none is idle, of one live worker.
pub fn wake_workers(n: u32) {
    let Some(sh) = shared() else { return };
    sh.commit_wakes.fetch_add(1, Ordering::Relaxed);
    let mut woken = 0;
    for slot in &sh.slots {
        if woken >= n {
            break;
        }
        let procno = slot.procno.load(Ordering::Acquire);
        if procno >= 0
            && slot
                .state
                .compare_exchange(IDLE, WOKEN, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            set_latch(procno);
            woken += 1;
        }
    }
    if woken == 0 {
        match sh
            .slots
            .iter()
            .map(|s| s.procno.load(Ordering::Acquire))
            .find(|&p| p >= 0)
        {
            Some(procno) => set_latch(procno),
            None => {
                sh.no_worker.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn set_latch(procno: i32) {
    let Some(sh) = shared() else { return };
    sh.latches_set.fetch_add(1, Ordering::Relaxed);
    // SAFETY: procno came from a live worker's MyProc; a stale number only causes a spurious
    // wake-up of whatever process now owns that PGPROC, which every latch waiter tolerates.
    unsafe {
        let proc_ = (*pg_sys::ProcGlobal).allProcs.add(procno as usize);
        pg_sys::SetLatch(&raw mut (*proc_).procLatch);
    }
}
