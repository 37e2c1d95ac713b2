//! The run lifecycle over HTTP: create, execute in the database's workers, read the
//! snapshot and the log. Mirrors the conformance `runs-lifecycle`, `eventOrdering` and
//! `failure-path` scenarios and goes further (identity, multi-node, the poll cursor).

use std::time::Duration;

use openwop_e2e::*;
use reqwest::StatusCode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn noop_run_is_created_then_completes_with_one_terminal_event_last() {
    let Ctx { api, tenant: t, .. } = setup().await;

    let r = api
        .post("/v1/runs", json!({ "workflowId": "conformance-noop" }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let run = r.body["runId"].as_str().unwrap().to_string();
    assert!(
        run.len() >= 16 && !run.contains(':'),
        "run ids are opaque, long enough for v2 and colon-free"
    );
    assert_eq!(r.body["status"], "pending");
    assert!(r.body["eventsUrl"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v1/runs/{run}/events")));
    assert_eq!(r.header("location"), r.body["statusUrl"].as_str());

    let snap = api.wait_terminal(&run, WAIT).await;
    assert_eq!(snap["status"], "completed");
    assert_eq!(snap["runId"], run.as_str());
    assert_eq!(snap["workflowId"], "conformance-noop");
    assert_eq!(snap["owner"]["tenant"], t.id.as_str());

    let events = api.events(&run).await;
    assert_log_invariants(&events);
    assert_eq!(
        types(&events),
        [
            "run.started",
            "node.started",
            "node.completed",
            "run.completed"
        ]
    );
    let again = api.events(&run).await;
    assert_eq!(
        events, again,
        "repeated polls of a terminal run are identical"
    );
    assert_eq!(events[0]["payload"]["workflowId"], "conformance-noop");
    assert_eq!(events[0]["payload"]["transport"], "rest");
}

#[tokio::test]
async fn snapshot_etag_changes_with_the_run() {
    let Ctx { api, .. } = setup().await;
    let run = api.start("conformance-noop", json!({})).await;
    api.wait_terminal(&run, WAIT).await;
    let r = api.get(&format!("/v1/runs/{run}")).await;
    let etag = r.header("etag").unwrap().to_string();
    let not_modified = Api::send(
        api.request(reqwest::Method::GET, &format!("/v1/runs/{run}"))
            .header("If-None-Match", &etag),
    )
    .await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn unknown_runs_are_404_in_every_shape() {
    let Ctx { api, .. } = setup().await;
    for path in [
        "/v1/runs/openwop-conformance-this-run-id-does-not-exist",
        "/v1/runs/00000000-0000-7000-8000-000000000000",
        "/v1/runs/00000000-0000-7000-8000-000000000000/events/poll",
        "/v1/runs/00000000-0000-7000-8000-000000000000/events",
    ] {
        let r = api.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.body["error"], "not_found", "{path}");
    }
    let r = api.get("/v1/workflows/no-such-workflow").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api.get("/v1/workflows/conformance-noop").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], "conformance-noop");
}

#[tokio::test]
async fn failure_fixture_fails_with_a_structured_error() {
    let Ctx { api, .. } = setup().await;
    let run = api.start("conformance-failure", json!({})).await;
    let snap = api.wait_terminal(&run, WAIT).await;
    assert_eq!(snap["status"], "failed");
    assert_eq!(snap["error"]["code"], "conformance_test_failure");
    assert!(snap["error"]["message"].is_string());
    let events = api.events(&run).await;
    assert_log_invariants(&events);
    assert_eq!(
        types(&events),
        ["run.started", "node.started", "node.failed", "run.failed"]
    );
    assert_eq!(
        events[3]["payload"]["error"]["code"],
        "conformance_test_failure"
    );
    assert_eq!(events[2]["nodeId"], "fail");
}

#[tokio::test]
async fn identity_returns_the_payload_deep_equal() {
    let Ctx { api, .. } = setup().await;
    let payload = json!({ "text": "héllo", "n": 1.5, "nested": { "list": [1, null, { "deep": true }] }, "empty": {} });
    let run = api
        .start("conformance-identity", json!({ "payload": payload }))
        .await;
    let snap = api.wait_terminal(&run, WAIT).await;
    assert_eq!(snap["status"], "completed");
    assert_eq!(snap["variables"]["payload"], payload);
    assert_eq!(snap["outputs"]["payload"], payload);
}

#[tokio::test]
async fn multi_node_runs_nodes_in_edge_order() {
    let Ctx { api, .. } = setup().await;
    let run = api.start("conformance-multi-node", json!({})).await;
    api.wait_terminal(&run, WAIT).await;
    let events = api.events(&run).await;
    assert_log_invariants(&events);
    let completed: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "node.completed")
        .map(|e| e["nodeId"].as_str().unwrap())
        .collect();
    assert_eq!(completed, ["a", "b", "c"]);
}

#[tokio::test]
async fn poll_cursor_long_polls_and_reports_completion() {
    let Ctx { api, .. } = setup().await;
    let run = api
        .start("conformance-delay", json!({ "delayMs": 400 }))
        .await;
    api.wait_status(&run, &["running"], WAIT).await;

    // From the start (no cursor, or 0): run.started and node.started so far, not complete.
    let first = api
        .get(&format!(
            "/v1/runs/{run}/events/poll?lastSequence=0&timeout=5"
        ))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["events"][0]["sequence"], 0);
    assert_eq!(first.body["isComplete"], false);
    let last = first.body["events"].as_array().unwrap().last().unwrap()["sequence"]
        .as_i64()
        .unwrap();

    // After the cursor: blocks until the delay ends, then returns the rest.
    let started = std::time::Instant::now();
    let rest = api
        .get(&format!(
            "/v1/runs/{run}/events/poll?lastSequence={last}&timeout=10"
        ))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a long poll returns when events arrive"
    );
    let rest_events = rest.body["events"].as_array().unwrap();
    assert!(rest_events
        .iter()
        .all(|e| e["sequence"].as_i64().unwrap() > last));
    assert_eq!(rest.body["isComplete"], true);
    assert_eq!(rest_events.last().unwrap()["type"], "run.completed");

    // Past the end: 200 and empty after the timeout.
    let past = api
        .get(&format!(
            "/v1/runs/{run}/events/poll?lastSequence=999&timeout=1"
        ))
        .await;
    assert_eq!(past.status, StatusCode::OK);
    assert_eq!(past.body["events"], json!([]));
    let bad = api
        .get(&format!("/v1/runs/{run}/events/poll?lastSequence=abc"))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"], "validation_error");
}

#[tokio::test]
async fn options_are_echoed_on_the_snapshot_and_run_started() {
    let Ctx {
        api, db, tenant, ..
    } = setup().await;
    db.execute("SELECT openwop.create_workspace('ws-1', $1)", &[&tenant.id])
        .await
        .unwrap();
    let r = api
        .post(
            "/v1/runs",
            json!({ "workflowId": "conformance-noop", "tags": ["a", "b"], "metadata": { "k": [1, null] },
                    "configurable": { "recursionLimit": 5 }, "scopeId": "scope-1", "tenantId": "ws-1" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let run = r.body["runId"].as_str().unwrap();
    let snap = api.wait_terminal(run, WAIT).await;
    assert_eq!(snap["tags"], json!(["a", "b"]));
    assert_eq!(snap["metadata"], json!({ "k": [1, null] }));
    assert_eq!(snap["configurable"], json!({ "recursionLimit": 5 }));
    assert_eq!(snap["scopeId"], "scope-1");
    assert_eq!(snap["owner"]["workspace"], "ws-1");
    let started = &api.events(run).await[0];
    assert_eq!(started["payload"]["tags"], json!(["a", "b"]));
    assert_eq!(started["payload"]["metadata"], json!({ "k": [1, null] }));
}

#[tokio::test]
async fn many_concurrent_runs_all_complete_with_clean_logs() {
    let Ctx { api, .. } = setup().await;
    let mut handles = Vec::new();
    for i in 0..60 {
        let api = api.clone();
        handles.push(tokio::spawn(async move {
            let wf = if i % 3 == 0 {
                "conformance-failure"
            } else {
                "conformance-multi-node"
            };
            let run = api.start(wf, json!({})).await;
            api.wait_terminal(&run, WAIT).await;
            let events = api.events(&run).await;
            assert_log_invariants(&events);
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
}
