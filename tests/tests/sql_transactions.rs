//! Starting runs from SQL inside the caller's own transaction: a rolled-back start never
//! exists anywhere; a committed one runs and is served by the edge like any other.

use std::time::Duration;

use openwop_e2e::*;
use reqwest::StatusCode;

#[tokio::test]
async fn rolled_back_start_never_appears_and_committed_start_completes() {
    let Ctx {
        mut db,
        tenant: t,
        api,
        ..
    } = setup().await;

    let tx = db.transaction().await.unwrap();
    let ghost = start_from_sql(&tx, &t.id, "conformance-noop").await;
    tx.rollback().await.unwrap();

    let tx = db.transaction().await.unwrap();
    tx.execute("CREATE TEMP TABLE app_orders (id int)", &[])
        .await
        .unwrap();
    tx.execute("INSERT INTO app_orders VALUES (1)", &[])
        .await
        .unwrap();
    let real = start_from_sql(&tx, &t.id, "conformance-multi-node").await;
    // Not visible to anyone before commit.
    assert_eq!(
        api.get(&format!("/v1/runs/{real}")).await.status,
        StatusCode::NOT_FOUND
    );
    tx.commit().await.unwrap();

    let snap = api
        .wait_terminal(&real.to_string(), Duration::from_secs(10))
        .await;
    assert_eq!(snap["status"], "completed");
    assert_log_invariants(&api.events(&real.to_string()).await);

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        api.get(&format!("/v1/runs/{ghost}")).await.status,
        StatusCode::NOT_FOUND
    );
    let rows: i64 = db
        .query_one("SELECT (SELECT count(*) FROM openwop.runs WHERE id = $1) + (SELECT count(*) FROM openwop.events WHERE run_id = $1)", &[&ghost])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "no trace of the rolled-back run");
}

#[tokio::test]
async fn committed_start_is_picked_up_at_commit_not_by_polling() {
    let env = TestEnv::from_env();
    let db = sql(&env).await;
    let t = new_tenant(&db, None).await;
    // The test cluster polls every 500 ms; a commit-time wake-up finishes a noop run far sooner.
    let mut fastest = Duration::MAX;
    for _ in 0..5 {
        let run = start_from_sql(&db, &t.id, "conformance-noop").await;
        let started = std::time::Instant::now();
        loop {
            let st: String = db
                .query_one("SELECT openwop.run($1, $2)->>'status'", &[&run, &t.id])
                .await
                .unwrap()
                .get(0);
            if st == "completed" {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        fastest = fastest.min(started.elapsed());
    }
    assert!(
        fastest < Duration::from_millis(200),
        "fastest commit-to-done {fastest:?}"
    );
}
