//! The router and the OpenAPI document agree: every documented operation is served (it is
//! not the unknown-route fallback, nor a 405), and the public ones need no key. Runs without a
//! database: requests stop at authentication or never need the database.

use axum::body::{to_bytes, Body};
use axum::http::{Method, Request, StatusCode};
use edge::config::Config;
use edge::db::Db;
use edge::openapi::{document, ROUTES};
use edge::state::AppState;
use serde_json::Value;
use tower::ServiceExt;

fn app() -> axum::Router {
    let mut config = Config::from_env().unwrap();
    // Nothing listens here: anything that reaches the database gets a fast 503.
    config.database_url = "postgres://nobody@127.0.0.1:1/none".into();
    config.db_wait = std::time::Duration::from_millis(200);
    let db = Db::connect(&config.database_url, 1, config.db_wait).unwrap();
    edge::app(AppState::new(db, config))
}

async fn call(method: &str, path: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let resp = app().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_documented_route_is_served() {
    for (method, path, id, scope) in ROUTES {
        let concrete = path
            .replace("{runId}", "00000000-0000-7000-8000-000000000000")
            .replace("{workflowId}", "w");
        let (status, body) = call(method, &concrete).await;
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{id}: {method} {path}"
        );
        assert!(
            body["details"]["route"] != "unknown",
            "{id}: {method} {path} hit the fallback"
        );
        if !scope.is_empty() {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{id} requires a key");
            assert_eq!(body["error"], "unauthenticated");
        }
    }
}

#[tokio::test]
async fn documented_routes_match_the_openapi_document() {
    let doc = document();
    let mut documented = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(ROUTES
                .iter()
                .any(|(m, p, id, _)| m == method && p == path && op["operationId"] == *id));
            documented += 1;
        }
    }
    assert_eq!(documented, ROUTES.len());
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_envelopes() {
    let (status, body) = call("get", "/v1/does-not-exist").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    let (status, body) = call("delete", "/v1/runs").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"], "method_not_allowed");
    let (status, body) = call("get", "/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["openapi"], "3.1.0");
}

#[tokio::test]
async fn an_unreachable_database_is_a_503_with_retry_after() {
    let resp = app()
        .oneshot(
            Request::get("/.well-known/openwop")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers().get("retry-after").unwrap(), "1");
    let body: Value =
        serde_json::from_slice(&to_bytes(resp.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(body["error"], "service_unavailable");
    assert_eq!(body["details"]["retryAfter"], 1);
}
