//! Idempotency-Key over HTTP (conformance `idempotency` and beyond): replays carry the same
//! run and `openwop-Idempotent-Replay`, a changed body is a 409 without the cached body, a
//! burst of duplicates from many connections creates exactly one run, and X-Dedup refuses an
//! equivalent active run.

use std::time::Duration;

use openwop_e2e::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn same_key_replays_and_a_changed_body_conflicts() {
    let Ctx { api, .. } = setup().await;
    let key = format!("openwop-e2e-{}", uuid::Uuid::new_v4());
    let body = json!({ "workflowId": "conformance-idempotent", "inputs": { "nonce": "abc-123" } });

    let first = api
        .post_with("/v1/runs", body.clone(), &[("Idempotency-Key", &key)])
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(first.header("openwop-idempotent-replay").is_none());
    let replay = api
        .post_with("/v1/runs", body.clone(), &[("Idempotency-Key", &key)])
        .await;
    assert!([StatusCode::OK, StatusCode::CREATED].contains(&replay.status));
    assert_eq!(replay.body["runId"], first.body["runId"]);
    assert_eq!(replay.body["eventsUrl"], first.body["eventsUrl"]);
    assert_eq!(replay.header("openwop-idempotent-replay"), Some("true"));

    let changed =
        json!({ "workflowId": "conformance-idempotent", "inputs": { "nonce": "DIFFERENT" } });
    let conflict = api
        .post_with("/v1/runs", changed, &[("Idempotency-Key", &key)])
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(conflict.body["error"], "idempotency_key_mismatch");
    assert!(
        conflict.body.get("runId").is_none(),
        "no cached body on a mismatch"
    );

    let bad = api
        .post_with("/v1/runs", body, &[("Idempotency-Key", "not a valid key")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn fifty_concurrent_duplicates_create_exactly_one_run() {
    let Ctx {
        api, db, tenant, ..
    } = setup().await;
    let key = format!("burst-{}", uuid::Uuid::new_v4());
    let body = json!({ "workflowId": "conformance-idempotent", "inputs": { "nonce": "burst" } });
    let mut handles = Vec::new();
    for _ in 0..50 {
        // a client of its own each: 50 separate connections
        let api = api.fresh_connection();
        let (body, key) = (body.clone(), key.clone());
        handles.push(tokio::spawn(async move {
            api.post_with("/v1/runs", body, &[("Idempotency-Key", &key)])
                .await
        }));
    }
    let mut run_ids = Vec::new();
    let mut replays = 0;
    for h in handles {
        let r = h.await.unwrap();
        assert!(
            r.status == StatusCode::CREATED || r.status == StatusCode::OK,
            "{} {:?}",
            r.status,
            r.body
        );
        if r.header("openwop-idempotent-replay") == Some("true") {
            replays += 1;
        }
        run_ids.push(r.body["runId"].as_str().unwrap().to_string());
    }
    run_ids.dedup();
    assert_eq!(run_ids.len(), 1, "every response names the same run");
    assert_eq!(replays, 49, "one execution, 49 replays");
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM openwop.runs WHERE tenant_id = $1",
            &[&tenant.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "exactly one run exists");
    assert_eq!(
        api.wait_terminal(&run_ids[0], Duration::from_secs(10))
            .await["status"],
        "completed"
    );
}

#[tokio::test]
async fn final_errors_are_replayed_and_cancel_is_idempotent() {
    let Ctx { api, .. } = setup().await;
    let key = format!("bad-{}", uuid::Uuid::new_v4());
    let body = json!({ "workflowId": "no-such-workflow" });
    let first = api
        .post_with("/v1/runs", body.clone(), &[("Idempotency-Key", &key)])
        .await;
    assert_eq!(first.status, StatusCode::BAD_REQUEST);
    let again = api
        .post_with("/v1/runs", body, &[("Idempotency-Key", &key)])
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("openwop-idempotent-replay"), Some("true"));

    let run = api
        .start("conformance-cancellable", json!({ "delayMs": 10000 }))
        .await;
    let key = format!("cancel-{}", uuid::Uuid::new_v4());
    let path = format!("/v1/runs/{run}/cancel");
    let c1 = api
        .post_with(
            &path,
            json!({ "reason": "r" }),
            &[("Idempotency-Key", &key)],
        )
        .await;
    api.wait_status(&run, &["cancelled"], Duration::from_secs(5))
        .await;
    let c2 = api
        .post_with(
            &path,
            json!({ "reason": "r" }),
            &[("Idempotency-Key", &key)],
        )
        .await;
    assert_eq!(c1.status, StatusCode::OK);
    assert_eq!(c2.body, c1.body, "the stored answer, not a new one");
    assert_eq!(c2.header("openwop-idempotent-replay"), Some("true"));
}

#[tokio::test]
async fn x_dedup_refuses_an_equivalent_active_run() {
    let Ctx { api, .. } = setup().await;
    let body = json!({ "workflowId": "conformance-cancellable", "inputs": { "delayMs": 10000 }, "scopeId": "order-77" });
    let first = api
        .post_with("/v1/runs", body.clone(), &[("X-Dedup", "enforce")])
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let dup = api
        .post_with("/v1/runs", body.clone(), &[("X-Dedup", "enforce")])
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.body["error"], "run_already_active");
    assert_eq!(dup.body["details"]["activeRunId"], first.body["runId"]);
    assert!(dup.body["details"]["activeHost"].is_string());
    assert_eq!(dup.body["details"]["retryAfter"], 1);
    assert_eq!(dup.header("retry-after"), Some("1"));
    let without = api.post_with("/v1/runs", body.clone(), &[]).await;
    assert_eq!(
        without.status,
        StatusCode::CREATED,
        "without X-Dedup nothing is refused"
    );
    let bad = api
        .post_with("/v1/runs", body, &[("X-Dedup", "maybe")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    for r in [&first, &without] {
        api.post(
            &format!("/v1/runs/{}/cancel", r.body["runId"].as_str().unwrap()),
            json!({}),
        )
        .await;
    }
}
