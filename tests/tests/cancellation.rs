//! Cancellation mid-flight (conformance `cancellation`), and its error paths.

use std::time::{Duration, Instant};

use openwop_e2e::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn cancel_mid_delay_reaches_cancelled_quickly() {
    let Ctx { api, .. } = setup().await;
    let run = api
        .start("conformance-cancellable", json!({ "delayMs": 10000 }))
        .await;
    api.wait_status(&run, &["running"], Duration::from_secs(5))
        .await;

    let asked = Instant::now();
    let r = api
        .post(
            &format!("/v1/runs/{run}/cancel"),
            json!({ "reason": "conformance-cancellation-test" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(["cancelled", "cancelling"].contains(&r.body["status"].as_str().unwrap()));
    assert_eq!(r.body["runId"], run.as_str());
    let snap = api
        .wait_status(&run, &["cancelled"], Duration::from_secs(5))
        .await;
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "cancelled within a second, took {:?}",
        asked.elapsed()
    );
    assert_eq!(snap["status"], "cancelled");

    let events = api.events(&run).await;
    assert_log_invariants(&events);
    assert_eq!(
        types(&events),
        [
            "run.started",
            "node.started",
            "node.cancelled",
            "run.cancelled"
        ]
    );
    assert_eq!(
        events[3]["payload"]["reason"],
        "conformance-cancellation-test"
    );

    // Cancelling again is idempotent; the colon spelling works too.
    let again = api.post(&format!("/v1/runs/{run}:cancel"), json!({})).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["status"], "cancelled");
}

#[tokio::test]
async fn cancel_errors() {
    let Ctx { api, .. } = setup().await;
    let r = api
        .post("/v1/runs/openwop-conformance-no-such-run/cancel", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api
        .post(
            "/v1/runs/00000000-0000-7000-8000-000000000000/cancel",
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let run = api.start("conformance-noop", json!({})).await;
    api.wait_terminal(&run, Duration::from_secs(10)).await;
    let r = api.post(&format!("/v1/runs/{run}/cancel"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["error"], "run_terminal");
    assert_eq!(r.body["details"]["runStatus"], "completed");

    let run = api
        .start("conformance-cancellable", json!({ "delayMs": 10000 }))
        .await;
    let r = api
        .post(&format!("/v1/runs/{run}/cancel"), json!({ "reason": 5 }))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = Api::send(api.request(reqwest::Method::POST, &format!("/v1/runs/{run}/cancel"))).await;
    assert_eq!(r.status, StatusCode::OK, "an empty body is fine");
    api.wait_status(&run, &["cancelled"], Duration::from_secs(5))
        .await;
}
