//! Discovery and the OpenAPI document, unauthenticated, as the conformance `discovery`
//! scenario checks them.

use openwop_e2e::*;
use reqwest::StatusCode;

#[tokio::test]
async fn discovery_document_is_public_cacheable_and_complete() {
    let env = TestEnv::from_env();
    let db = sql(&env).await;
    let _tenant = new_tenant(&db, None).await; // guarantees the fixtures are seeded somewhere
    let edge = Edge::start(&env).await;
    let anon = edge.anonymous();

    let r = anon.get("/.well-known/openwop").await;
    assert_eq!(r.status, StatusCode::OK);
    for field in [
        "protocolVersion",
        "supportedEnvelopes",
        "schemaVersions",
        "limits",
    ] {
        assert!(r.body.get(field).is_some(), "missing {field}");
    }
    assert_eq!(r.body["protocolVersion"], "1.0");
    assert!(regex_like_version(
        r.body["protocolVersion"].as_str().unwrap()
    ));
    for k in [
        "clarificationRounds",
        "schemaRounds",
        "envelopesPerTurn",
        "maxNodeExecutions",
        "maxRunDurationMs",
    ] {
        assert!(
            r.body["limits"][k].as_i64().is_some_and(|v| v >= 0),
            "limits.{k}"
        );
    }
    assert_eq!(r.body["eventLogSchemaVersion"], 3);
    let fixtures: Vec<&str> = r.body["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for f in [
        "conformance-noop",
        "conformance-identity",
        "conformance-delay",
        "conformance-failure",
        "conformance-multi-node",
        "conformance-cancellable",
        "conformance-idempotent",
    ] {
        assert!(fixtures.contains(&f), "{f} advertised");
    }
    let mut unique = fixtures.clone();
    unique.dedup();
    assert_eq!(unique.len(), fixtures.len(), "fixtures are unique");
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));

    let etag = r.header("etag").expect("ETag").to_string();
    assert_eq!(r.header("capabilities-etag"), Some(etag.as_str()));
    let again = Api::send(
        anon.request(reqwest::Method::GET, "/.well-known/openwop")
            .header("If-None-Match", &etag),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let other = Api::send(
        anon.request(reqwest::Method::GET, "/.well-known/openwop")
            .header("If-None-Match", "\"nope\""),
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
}

fn regex_like_version(v: &str) -> bool {
    let mut parts = v.split('.');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p == "0" || !p.starts_with('0'))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

#[tokio::test]
async fn openapi_document_is_public_and_3_1() {
    let env = TestEnv::from_env();
    let edge = Edge::start(&env).await;
    let r = edge.anonymous().get("/v1/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(r.body["paths"]["/v1/runs"]["post"].is_object());
    assert!(
        r.body["components"]["schemas"]["RunCreateRequest"]["properties"]["workflowId"].is_object()
    );
}
