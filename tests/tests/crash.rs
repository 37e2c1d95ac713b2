//! Crash and restart paths: kill a worker with SIGKILL (the postmaster then restarts the
//! whole cluster), restart the cluster mid-delay, terminate a worker. Nothing is lost and
//! nothing is duplicated. These tests disturb the shared cluster, so they run one at a time
//! (and cargo runs this test binary alone).

use std::time::Duration;

use openwop_e2e::*;
use serde_json::json;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start_many(api: &Api, workflow: &str, inputs: serde_json::Value, n: usize) -> Vec<String> {
    let mut handles = Vec::new();
    for _ in 0..n {
        let (api, inputs, wf) = (api.clone(), inputs.clone(), workflow.to_string());
        handles.push(tokio::spawn(async move { api.start(&wf, inputs).await }));
    }
    let mut runs = Vec::new();
    for h in handles {
        runs.push(h.await.unwrap());
    }
    runs
}

async fn assert_all_completed_cleanly(api: &Api, runs: &[String], expected: &[&str]) {
    for run in runs {
        let snap = api.wait_terminal(run, Duration::from_secs(60)).await;
        assert_eq!(snap["status"], "completed", "{run}: {snap}");
        let events = api.events(run).await;
        assert_log_invariants(&events);
        assert_eq!(types(&events), expected, "{run}");
    }
}

#[tokio::test]
async fn killing_a_worker_loses_and_duplicates_nothing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let env = TestEnv::from_env();
    let db = sql(&env).await;
    let t = new_tenant(&db, None).await;
    let edge = Edge::start(&env).await;
    let api = edge.api(&t.key);

    let delayed = start_many(&api, "conformance-delay", json!({ "delayMs": 1500 }), 60).await;
    for run in &delayed {
        api.wait_status(run, &["running"], Duration::from_secs(10))
            .await;
    }
    // A live SSE stream across the crash must still see the end of its run.
    let watcher = {
        let api = api.clone();
        let path = format!("/v1/runs/{}/events?streamMode=debug", delayed[0]);
        tokio::spawn(async move { api.sse(&path, None, Duration::from_secs(60)).await.1 })
    };
    // Runs that are mid-step when the worker dies.
    let busy = start_many(&api, "conformance-multi-node", json!({}), 60).await;

    let pid: i32 = db
        .query_one("SELECT pid FROM openwop.worker_stats() WHERE slot = 0", &[])
        .await
        .unwrap()
        .get(0);
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    drop(db);

    // Wait for the crash restart itself: a connection made in the instant before the
    // postmaster notices the kill would be cut by it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let db = loop {
        let db = sql_retry(&env, Duration::from_secs(30)).await;
        let now: Option<i32> = db
            .query_one("SELECT pid FROM openwop.worker_stats() WHERE slot = 0", &[])
            .await
            .ok()
            .and_then(|r| r.get(0));
        if now.is_some_and(|p| p != pid) {
            break db;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cluster did not restart after the kill"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_all_completed_cleanly(
        &api,
        &delayed,
        &[
            "run.started",
            "node.started",
            "node.completed",
            "run.completed",
        ],
    )
    .await;
    assert_all_completed_cleanly(
        &api,
        &busy,
        &[
            "run.started",
            "node.started",
            "node.completed",
            "node.started",
            "node.completed",
            "node.started",
            "node.completed",
            "run.completed",
        ],
    )
    .await;
    let seen: Vec<i64> = watcher
        .await
        .unwrap()
        .iter()
        .filter_map(|f| f.id.as_ref())
        .map(|i| i.parse().unwrap())
        .collect();
    assert_eq!(
        seen,
        [0, 1, 2, 3],
        "the stream survived the crash without gaps or repeats"
    );
    let leftover: i64 = db
        .query_one(
            "SELECT count(*) FROM openwop.timers WHERE tenant_id = $1",
            &[&t.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leftover, 0, "no timer outlives its run");
}

#[tokio::test]
async fn restarting_the_cluster_mid_delay_finishes_every_run() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let env = TestEnv::from_env();
    let db = sql(&env).await;
    let t = new_tenant(&db, None).await;
    drop(db);
    let edge = Edge::start(&env).await;
    let api = edge.api(&t.key);
    let runs = start_many(&api, "conformance-delay", json!({ "delayMs": 2000 }), 30).await;
    for run in &runs {
        api.wait_status(run, &["running"], Duration::from_secs(10))
            .await;
    }
    env.cluster("restart");
    sql_retry(&env, Duration::from_secs(30)).await;
    assert_all_completed_cleanly(
        &api,
        &runs,
        &[
            "run.started",
            "node.started",
            "node.completed",
            "run.completed",
        ],
    )
    .await;
    // The edge's LISTEN connection came back: a new run streams live.
    let run = api
        .start("conformance-delay", json!({ "delayMs": 300 }))
        .await;
    let (_, frames) = api
        .sse(
            &format!("/v1/runs/{run}/events"),
            None,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        frames.iter().filter_map(|f| f.event.as_deref()).next_back(),
        Some("run.completed")
    );
}

#[tokio::test]
async fn a_terminated_worker_is_restarted_and_work_continues() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let env = TestEnv::from_env();
    let db = sql_retry(&env, Duration::from_secs(30)).await;
    let t = new_tenant(&db, None).await;
    let starts: i64 = db
        .query_one(
            "SELECT starts FROM openwop.worker_stats() WHERE slot = 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM openwop.worker_stats() WHERE slot = 1",
        &[],
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now: i64 = db
            .query_one(
                "SELECT starts FROM openwop.worker_stats() WHERE slot = 1 AND state <> 'stopped'",
                &[],
            )
            .await
            .ok()
            .map(|r| r.get(0))
            .unwrap_or(starts);
        if now > starts {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "worker 1 was not restarted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let edge = Edge::start(&env).await;
    let api = edge.api(&t.key);
    let run = api.start("conformance-multi-node", json!({})).await;
    assert_eq!(
        api.wait_terminal(&run, Duration::from_secs(10)).await["status"],
        "completed"
    );
}
