//! Server-sent events: frames, modes, Last-Event-ID resume, live follow, close after the
//! terminal event, and many clients on one LISTEN connection.

use std::time::Duration;

use openwop_e2e::*;
use reqwest::StatusCode;
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(15);

#[tokio::test]
async fn live_stream_follows_a_delayed_run_and_closes_after_the_terminal_event() {
    let Ctx { api, .. } = setup().await;
    let run = api
        .start("conformance-delay", json!({ "delayMs": 600 }))
        .await;
    let (status, frames) = api
        .sse(&format!("/v1/runs/{run}/events"), None, WITHIN)
        .await;
    assert_eq!(status, StatusCode::OK);
    let events: Vec<_> = frames.iter().filter(|f| f.event.is_some()).collect();
    let names: Vec<&str> = events.iter().map(|f| f.event.as_deref().unwrap()).collect();
    // updates mode: no node.started
    assert_eq!(names, ["run.started", "node.completed", "run.completed"]);
    for f in &events {
        let doc = f.json();
        assert_eq!(
            f.id.as_deref(),
            Some(doc["sequence"].to_string().as_str()),
            "id is the sequence"
        );
        assert_eq!(f.event.as_deref(), doc["type"].as_str());
        assert_eq!(doc["runId"], run.as_str());
    }
}

#[tokio::test]
async fn debug_mode_carries_everything_and_last_event_id_resumes_without_repeats() {
    let Ctx { api, .. } = setup().await;
    let run = api.start("conformance-multi-node", json!({})).await;
    api.wait_terminal(&run, WITHIN).await;

    let (_, all) = api
        .sse(
            &format!("/v1/runs/{run}/events?streamMode=debug"),
            None,
            WITHIN,
        )
        .await;
    let seqs: Vec<i64> = all
        .iter()
        .filter_map(|f| f.id.as_ref())
        .map(|id| id.parse().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (0..=7).collect::<Vec<_>>(),
        "debug mode: every event, in order"
    );

    let (_, resumed) = api
        .sse(
            &format!("/v1/runs/{run}/events?streamMode=debug"),
            Some("4"),
            WITHIN,
        )
        .await;
    let seqs: Vec<i64> = resumed
        .iter()
        .filter_map(|f| f.id.as_ref())
        .map(|id| id.parse().unwrap())
        .collect();
    assert_eq!(seqs, [5, 6, 7], "Last-Event-ID is exclusive");

    let (_, updates) = api
        .sse(
            &format!("/v1/runs/{run}/events?streamMode=updates,debug"),
            None,
            WITHIN,
        )
        .await;
    assert_eq!(
        updates.iter().filter(|f| f.id.is_some()).count(),
        8,
        "mixed modes: the union"
    );

    let (_, past) = api
        .sse(
            &format!("/v1/runs/{run}/events"),
            Some("100"),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        past.iter().all(|f| f.id.is_none()),
        "an id past the end is not refused and sends nothing"
    );
}

#[tokio::test]
async fn unsupported_modes_and_bad_ids_are_refused_before_streaming() {
    let Ctx { api, .. } = setup().await;
    let run = api.start("conformance-noop", json!({})).await;
    for mode in ["values", "messages", "nonsense", "updates,values"] {
        let r = api
            .get(&format!("/v1/runs/{run}/events?streamMode={mode}"))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{mode}");
        assert_eq!(r.body["error"], "unsupported_stream_mode");
        assert_eq!(r.body["details"]["supported"], json!(["updates", "debug"]));
    }
    let r = Api::send(
        api.request(reqwest::Method::GET, &format!("/v1/runs/{run}/events"))
            .header("Last-Event-ID", "x"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn keepalive_comments_flow_on_an_idle_stream() {
    let Ctx { api, .. } = setup_with(&[("OPENWOP_SSE_KEEPALIVE_SECS", "1")]).await;
    let run = api
        .start("conformance-delay", json!({ "delayMs": 2500 }))
        .await;
    let (_, frames) = api
        .sse(&format!("/v1/runs/{run}/events"), None, WITHIN)
        .await;
    assert!(
        frames
            .iter()
            .any(|f| f.comment.as_deref() == Some("keepalive")),
        "a keep-alive comment arrived"
    );
    assert_eq!(
        frames.iter().filter_map(|f| f.event.as_deref()).next_back(),
        Some("run.completed")
    );
}

#[tokio::test]
async fn many_clients_see_the_same_events_live() {
    let Ctx { api, .. } = setup().await;
    let run = api
        .start("conformance-delay", json!({ "delayMs": 1500 }))
        .await;
    let mut handles = Vec::new();
    for _ in 0..40 {
        let api = api.clone();
        let path = format!("/v1/runs/{run}/events?streamMode=debug");
        handles.push(tokio::spawn(
            async move { api.sse(&path, None, WITHIN).await.1 },
        ));
    }
    for h in handles {
        let frames = h.await.unwrap();
        let seqs: Vec<i64> = frames
            .iter()
            .filter_map(|f| f.id.as_ref())
            .map(|id| id.parse().unwrap())
            .collect();
        assert_eq!(
            seqs,
            [0, 1, 2, 3],
            "every client: all events once, in order"
        );
    }
}
