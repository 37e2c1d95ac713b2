//! Backpressure: per-key rate limit (429), the in-flight cap (503), the stream cap (429).
//! Every refusal is an envelope with Retry-After, and nothing is dropped silently.

use std::time::Duration;

use openwop_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_then_recovers() {
    let Ctx { api, edge, .. } =
        setup_with(&[("OPENWOP_RATE_LIMIT", "5"), ("OPENWOP_RATE_BURST", "5")]).await;
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..12 {
        let r = api.get("/v1/workflows/conformance-noop").await;
        statuses.push(r.status);
        if r.status == StatusCode::TOO_MANY_REQUESTS && refused.is_none() {
            refused = Some(r);
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        5,
        "{statuses:?}"
    );
    let r = refused.expect("a 429");
    assert_eq!(r.body["error"], "rate_limited");
    assert_eq!(r.body["details"]["scope"], "key");
    assert!(r.body["details"]["retryAfterMs"].as_u64().is_some());
    assert!(r.header("retry-after").is_some());
    // Discovery is not charged to any key.
    assert_eq!(
        edge.anonymous().get("/.well-known/openwop").await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        api.get("/v1/workflows/conformance-noop").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn requests_beyond_the_in_flight_cap_get_503_and_nothing_is_lost() {
    let Ctx {
        api,
        mut db,
        tenant,
        ..
    } = setup_with(&[("OPENWOP_MAX_IN_FLIGHT", "2")]).await;
    let run = api
        .start("conformance-cancellable", json!({ "delayMs": 10000 }))
        .await;
    // Hold the run's row: the next two cancels wait on it, filling the edge.
    let tx = db.transaction().await.unwrap();
    tx.execute(
        "SELECT 1 FROM openwop.runs WHERE id = $1::text::uuid FOR UPDATE",
        &[&run],
    )
    .await
    .unwrap();
    let mut blocked = Vec::new();
    for _ in 0..2 {
        let (api, path) = (api.fresh_connection(), format!("/v1/runs/{run}/cancel"));
        blocked.push(tokio::spawn(
            async move { api.post(&path, json!({})).await },
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = api
        .fresh_connection()
        .get("/v1/workflows/conformance-noop")
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["error"], "service_unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.body["details"]["retryAfter"], 1);
    tx.commit().await.unwrap();
    for h in blocked {
        assert_eq!(h.await.unwrap().status, StatusCode::OK);
    }
    let snap = api
        .wait_status(&run, &["cancelled"], Duration::from_secs(5))
        .await;
    assert_eq!(snap["status"], "cancelled");
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM openwop.runs WHERE tenant_id = $1",
            &[&tenant.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[tokio::test]
async fn streams_beyond_the_cap_get_429_never_a_silent_drop() {
    let Ctx { api, .. } = setup_with(&[("OPENWOP_MAX_STREAMS", "2")]).await;
    let run = api
        .start("conformance-cancellable", json!({ "delayMs": 10000 }))
        .await;
    api.wait_status(&run, &["running"], Duration::from_secs(5))
        .await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let (api, path) = (api.fresh_connection(), format!("/v1/runs/{run}/events"));
        open.push(tokio::spawn(async move {
            api.sse(&path, None, Duration::from_secs(30)).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = Api::send(api.request(Method::GET, &format!("/v1/runs/{run}/events"))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["error"], "rate_limited");
    assert!(r.header("retry-after").is_some());
    let r = api
        .get(&format!(
            "/v1/runs/{run}/events/poll?lastSequence=1&timeout=1"
        ))
        .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "long polls share the stream cap"
    );

    // Ending the run closes the two streams, each with the terminal event, and frees the slots.
    api.post(&format!("/v1/runs/{run}/cancel"), json!({})).await;
    for h in open {
        let (status, frames) = h.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            frames.iter().filter_map(|f| f.event.as_deref()).next_back(),
            Some("run.cancelled")
        );
    }
    let (status, _) = api
        .sse(
            &format!("/v1/runs/{run}/events"),
            None,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
