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
