//! Bad input never crashes or hangs anything: every refusal is the protocol envelope
//! `{error, message, details?}` with the right status and code.

use openwop_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn assert_envelope(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    let obj = r
        .body
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {:?}", r.body));
    assert!(
        obj.keys()
            .all(|k| ["error", "message", "details"].contains(&k.as_str())),
        "extra keys: {obj:?}"
    );
    assert_eq!(obj["error"], code);
    assert!(obj["message"].as_str().is_some_and(|m| !m.is_empty()));
    if let Some(d) = obj.get("details") {
        assert!(d.is_object());
    }
}

#[tokio::test]
async fn request_errors_are_envelopes() {
    let Ctx {
        api, db, tenant: t, ..
    } = setup_with(&[("OPENWOP_MAX_BODY_BYTES", "4096")]).await;

    let raw = |body: &'static str| {
        Api::send(
            api.request(Method::POST, "/v1/runs")
                .header("Content-Type", "application/json")
                .body(body),
        )
    };
    assert_envelope(
        &raw("{\"workflowId\":").await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    );
    assert_envelope(&raw("").await, StatusCode::BAD_REQUEST, "validation_error");
    assert_envelope(
        &raw("[1,2]").await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    );
    assert_envelope(
        &raw("\"text\"").await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    );

    let r = api
        .post(
            "/v1/runs",
            json!({ "workflowId": "conformance-noop", "surprise": true }),
        )
        .await;
    assert_envelope(&r, StatusCode::BAD_REQUEST, "validation_error");
    assert_eq!(r.body["details"]["field"], "surprise");
    let r = api.post("/v1/runs", json!({ "workflowId": 7 })).await;
    assert_envelope(&r, StatusCode::BAD_REQUEST, "validation_error");
    let r = api
        .post("/v1/runs", json!({ "workflowId": "no-such-workflow" }))
        .await;
    assert_envelope(&r, StatusCode::BAD_REQUEST, "validation_error");
    assert_eq!(r.body["details"]["field"], "workflowId");
    let r = api
        .post(
            "/v1/runs",
            json!({ "workflowId": "conformance-idempotent" }),
        )
        .await;
    assert_envelope(&r, StatusCode::BAD_REQUEST, "validation_error");
    assert_eq!(r.body["details"]["field"], "inputs.nonce");
    let r = api
        .post(
            "/v1/runs",
            json!({ "workflowId": "conformance-delay", "inputs": { "delayMs": "soon" } }),
        )
        .await;
    assert_envelope(&r, StatusCode::BAD_REQUEST, "validation_error");
    let r = api
        .post(
            "/v1/runs",
            json!({ "workflowId": "conformance-noop", "tags": vec!["x"; 101] }),
        )
        .await;
    assert_envelope(&r, StatusCode::BAD_REQUEST, "validation_error");
    let r = api
        .post(
            "/v1/runs",
            json!({ "workflowId": "conformance-noop", "configurable": { "recursionLimit": -1 } }),
        )
        .await;
    assert_envelope(&r, StatusCode::BAD_REQUEST, "validation_error");
    assert_eq!(r.body["details"]["key"], "recursionLimit");

    let big = json!({ "workflowId": "conformance-noop", "inputs": { "blob": "x".repeat(10_000) } });
    assert_envelope(
        &api.post("/v1/runs", big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    assert_envelope(
        &Api::send(api.request(Method::DELETE, "/v1/runs")).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert_envelope(
        &Api::send(api.request(Method::PUT, "/v1/runs/x/cancel")).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert_envelope(
        &api.get("/v1/nowhere").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_envelope(
        &api.post("/v1/runs/abc:explode", json!({})).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    let bad_query = api
        .get("/v1/runs/00000000-0000-7000-8000-000000000000/events/poll?timeout=%zz")
        .await;
    assert!(bad_query.status.is_client_error());
    assert!(bad_query.body.get("error").is_some());

    // Nothing above left a run behind.
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM openwop.runs WHERE tenant_id = $1",
            &[&t.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn authentication_and_scopes() {
    let env = TestEnv::from_env();
    let db = sql(&env).await;
    let t = new_tenant(&db, None).await;
    let reader = new_tenant(&db, Some(&["runs:read"])).await;
    let edge = Edge::start_with(&env, &[("OPENWOP_AUTH_CACHE_MS", "0")]).await;

    let anon = edge.anonymous();
    let r = anon
        .get("/v1/runs/00000000-0000-7000-8000-000000000000")
        .await;
    assert_envelope(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert!(r.header("www-authenticate").is_some());
    let r = anon
        .post("/v1/runs", json!({ "workflowId": "conformance-noop" }))
        .await;
    assert_envelope(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
    let r = edge
        .api("owk_wrong_key_000000000000000000000")
        .get("/v1/workflows/conformance-noop")
        .await;
    assert_envelope(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
    let r = Api::send(
        anon.request(Method::GET, "/v1/workflows/conformance-noop")
            .header("Authorization", "Basic abc"),
    )
    .await;
    assert_envelope(&r, StatusCode::UNAUTHORIZED, "unauthenticated");

    let r = edge
        .api(&reader.key)
        .post("/v1/runs", json!({ "workflowId": "conformance-noop" }))
        .await;
    assert_envelope(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(r.body["details"]["scopeRequired"], "runs:create");
    let r = edge
        .api(&reader.key)
        .get("/v1/workflows/conformance-noop")
        .await;
    assert_eq!(r.body["details"]["scopeRequired"], "manifest:read");

    // Revoked and expired keys.
    let api = edge.api(&t.key);
    assert_eq!(
        api.get("/v1/workflows/conformance-noop").await.status,
        StatusCode::OK
    );
    db.execute(
        "SELECT openwop.revoke_api_key(id, tenant_id) FROM openwop.api_keys WHERE tenant_id = $1",
        &[&t.id],
    )
    .await
    .unwrap();
    assert_envelope(
        &api.get("/v1/workflows/conformance-noop").await,
        StatusCode::UNAUTHORIZED,
        "key_revoked",
    );
    let expired: String = db
        .query_one("SELECT openwop.create_api_key($1, 'old', openwop.all_scopes(), now() - interval '1 second')", &[&reader.id])
        .await
        .unwrap()
        .get(0);
    assert_envelope(
        &edge
            .api(&expired)
            .get("/v1/workflows/conformance-noop")
            .await,
        StatusCode::UNAUTHORIZED,
        "key_expired",
    );

    // Discovery and OpenAPI stay public.
    assert_eq!(
        anon.get("/.well-known/openwop").await.status,
        StatusCode::OK
    );
    assert_eq!(anon.get("/v1/openapi.json").await.status, StatusCode::OK);
}

#[tokio::test]
async fn another_tenants_run_is_invisible() {
    let env = TestEnv::from_env();
    let db = sql(&env).await;
    let owner = new_tenant(&db, None).await;
    let other = new_tenant(&db, None).await;
    let edge = Edge::start(&env).await;
    let mine = edge.api(&owner.key);
    let theirs = edge.api(&other.key);
    let run = mine
        .start("conformance-cancellable", json!({ "delayMs": 10000 }))
        .await;
    for r in [
        theirs.get(&format!("/v1/runs/{run}")).await,
        theirs.get(&format!("/v1/runs/{run}/events/poll")).await,
        theirs.get(&format!("/v1/runs/{run}/events")).await,
        theirs
            .post(&format!("/v1/runs/{run}/cancel"), json!({}))
            .await,
    ] {
        assert_envelope(&r, StatusCode::NOT_FOUND, "not_found");
    }
    let snap = mine.get(&format!("/v1/runs/{run}")).await;
    assert_ne!(snap.body["status"], Value::from("cancelled"));
    mine.post(&format!("/v1/runs/{run}/cancel"), json!({}))
        .await;
}
