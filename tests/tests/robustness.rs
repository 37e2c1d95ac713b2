//! A run the engine cannot step (here: its stored state was corrupted by hand) must not block
//! the queue: the workers isolate it, fail it with internal_error, and keep executing others.

use std::time::Duration;

use openwop_e2e::*;
use serde_json::json;

#[tokio::test]
async fn a_poisoned_run_is_failed_and_the_others_proceed() {
    let Ctx {
        mut db,
        tenant: t,
        api,
        ..
    } = setup().await;

    let tx = db.transaction().await.unwrap();
    let mut healthy = Vec::new();
    for _ in 0..5 {
        let id = start_from_sql(&tx, &t.id, "conformance-multi-node").await;
        healthy.push(id.to_string());
    }
    let poisoned = start_from_sql(&tx, &t.id, "conformance-noop").await;
    tx.execute(
        "UPDATE openwop.runs SET node_states = '\"not an object\"' WHERE id = $1",
        &[&poisoned],
    )
    .await
    .unwrap();
    for _ in 0..5 {
        let id = start_from_sql(&tx, &t.id, "conformance-multi-node").await;
        healthy.push(id.to_string());
    }
    tx.commit().await.unwrap();

    for run in &healthy {
        assert_eq!(
            api.wait_terminal(run, Duration::from_secs(20)).await["status"],
            "completed"
        );
        assert_log_invariants(&api.events(run).await);
    }
    let snap = api
        .wait_terminal(&poisoned.to_string(), Duration::from_secs(20))
        .await;
    assert_eq!(snap["status"], "failed");
    assert_eq!(snap["error"]["code"], "internal_error");
    let events = api.events(&poisoned.to_string()).await;
    assert_log_invariants(&events);
    assert_eq!(types(&events), ["run.failed"]);

    // The queue still flows.
    let run = api.start("conformance-noop", json!({})).await;
    assert_eq!(
        api.wait_terminal(&run, Duration::from_secs(10)).await["status"],
        "completed"
    );
}

/// Failed batches and quarantines of every worker since the cluster started.
async fn worker_errors(db: &tokio_postgres::Client) -> i64 {
    db.query_one(
        "SELECT coalesce(sum(errors), 0)::bigint FROM openwop.worker_stats()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// Regression: a delayed run whose event counter was set back by hand (`next_seq = 0`) used to
/// fail every batch of both workers on `events_pkey`, and its quarantine failed on the same
/// key, so it stayed first in the queue and no tenant's runs completed. Now the claim sees the
/// counter disagree with the log, sets the run aside, and quarantines it after its last event.
#[tokio::test]
async fn a_run_with_a_broken_counter_stalls_nobody() {
    let Ctx {
        db,
        api: victim_api,
        edge,
        ..
    } = setup().await;
    let other = new_tenant(&db, None).await;
    let other_api = edge.api(&other.key);
    let errors_before = worker_errors(&db).await;

    let poisoned = victim_api
        .start("conformance-delay", json!({ "delayMs": 30000 }))
        .await;
    let suspended = victim_api
        .wait_status(&poisoned, &["running"], Duration::from_secs(10))
        .await;
    assert!(suspended["lastSequence"].as_i64().unwrap() >= 1);
    // What a tenant role could do before it lost direct writes; a superuser still can.
    db.execute(
        "UPDATE openwop.runs SET next_seq = 0, ready_at = now() - interval '1 hour' WHERE id = $1::text::uuid",
        &[&poisoned],
    )
    .await
    .unwrap();

    let started = std::time::Instant::now();
    let mut healthy = Vec::new();
    for _ in 0..5 {
        healthy.push(other_api.start("conformance-multi-node", json!({})).await);
    }
    for run in &healthy {
        let snap = other_api.wait_terminal(run, Duration::from_secs(5)).await;
        assert_eq!(snap["status"], "completed");
        assert_log_invariants(&other_api.events(run).await);
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the other tenant's runs took {:?}",
        started.elapsed()
    );

    let snap = victim_api
        .wait_terminal(&poisoned, Duration::from_secs(5))
        .await;
    assert_eq!(snap["status"], "failed");
    assert_eq!(snap["error"]["code"], "internal_error");
    let events = victim_api.events(&poisoned).await;
    assert_log_invariants(&events);
    // Everything it had logged is kept, and run.failed follows the last of it.
    let logged = suspended["lastSequence"].as_i64().unwrap() as usize + 1;
    assert_eq!(events.len(), logged + 1, "{:?}", types(&events));
    assert_eq!(types(&events).last().unwrap(), "run.failed");
    // The counter follows the log again: one past the terminal event.
    assert_eq!(
        snap["lastSequence"].as_i64().unwrap() as usize,
        events.len() - 1
    );

    let errors_after = worker_errors(&db).await;
    assert!(
        errors_after - errors_before <= 5,
        "{} failed batches or quarantines",
        errors_after - errors_before
    );
}
