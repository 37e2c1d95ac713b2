//! Hostile input never gets a 500, nor an answer without the error envelope: U+0000 in any
//! JSON string, requests the HTTP parser refuses, odd ids and headers, out-of-range query
//! values, methods a path does not serve. Each case was once a defect; each assertion is the
//! behaviour a client relies on now.

use std::io::{Read, Write};
use std::time::Duration;

use openwop_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// How many runs a tenant has, straight from the database.
async fn run_count(db: &tokio_postgres::Client, tenant: &str) -> i64 {
    db.query_one(
        "SELECT count(*) FROM openwop.runs WHERE tenant_id = $1",
        &[&tenant],
    )
    .await
    .unwrap()
    .get(0)
}

fn assert_envelope(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.body["error"], code, "{:?}", r.body);
    assert!(!r.body["message"].as_str().unwrap_or("").is_empty());
}

#[tokio::test]
async fn nul_in_any_json_string_is_a_400_naming_the_field() {
    let Ctx {
        db, tenant, api, ..
    } = setup().await;
    let nul = "a\u{0}b";
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "workflowId": nul }), "workflowId"),
        (
            json!({ "workflowId": "conformance-noop", "inputs": { "x": nul } }),
            "inputs.x",
        ),
        (
            json!({ "workflowId": "conformance-noop", "inputs": { nul: 1 } }),
            "inputs.a\\u0000b",
        ),
        (
            json!({ "workflowId": "conformance-noop", "tags": ["ok", nul] }),
            "tags[1]",
        ),
        (
            json!({ "workflowId": "conformance-noop", "scopeId": nul }),
            "scopeId",
        ),
        (
            json!({ "workflowId": "conformance-noop", "tenantId": nul }),
            "tenantId",
        ),
        (
            json!({ "workflowId": "conformance-noop", "metadata": { "deep": [{ "k": nul }] } }),
            "metadata.deep[0].k",
        ),
        (
            json!({ "workflowId": "conformance-noop", "callbackUrl": nul }),
            "callbackUrl",
        ),
    ];
    for (body, field) in cases {
        let r = api.post("/v1/runs", body.clone()).await;
        assert_envelope(&r, StatusCode::BAD_REQUEST, "validation_error");
        assert_eq!(r.body["details"]["field"], field, "{body}");
    }
    assert_eq!(run_count(&db, &tenant.id).await, 0, "nothing was created");

    // The same on cancel, for a real run, which is left untouched.
    let run = api
        .start("conformance-delay", json!({ "delayMs": 300 }))
        .await;
    for path in [
        format!("/v1/runs/{run}/cancel"),
        format!("/v1/runs/{run}:cancel"),
    ] {
        let r = api.post(&path, json!({ "reason": nul })).await;
        assert_envelope(&r, StatusCode::BAD_REQUEST, "validation_error");
        assert_eq!(r.body["details"]["field"], "reason");
    }
    assert_eq!(
        api.wait_terminal(&run, Duration::from_secs(10)).await["status"],
        "completed"
    );

    // An id holding U+0000 names nothing.
    for path in [
        "/v1/workflows/a%00b",
        "/v1/runs/a%00b",
        "/v1/runs/%00/events/poll",
    ] {
        assert_envelope(&api.get(path).await, StatusCode::NOT_FOUND, "not_found");
    }
}

/// Send raw bytes and read the whole answer (the server closes after a parser refusal).
fn raw_exchange(base: &str, request: &[u8]) -> (u16, String, Value) {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The server may answer (and close) before it has read everything; that is fine.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn requests_the_parser_refuses_still_get_envelopes() {
    let Ctx { edge, .. } = setup().await;
    let long_path = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000));
    let big_headers = format!(
        "GET /.well-known/openwop HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(1 << 20)
    );
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"GARBAGE\r\n\r\n".to_vec(), 400, "validation_error"),
        (
            b"GET /v1/runs HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\n\r\n".to_vec(),
            400,
            "validation_error",
        ),
        (long_path.into_bytes(), 414, "uri_too_long"),
        (big_headers.into_bytes(), 431, "request_headers_too_large"),
    ];
    for (request, status, code) in cases {
        let edge_base = edge.base.clone();
        let (got, head, body) =
            tokio::task::spawn_blocking(move || raw_exchange(&edge_base, &request))
                .await
                .unwrap();
        assert_eq!(got, status, "{head}");
        assert_eq!(body["error"], code, "{head}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("openwop-version: "), "{head}");
    }
    // The edge is still serving.
    let r = edge.anonymous().get("/.well-known/openwop").await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn odd_ids_headers_and_query_values_are_refused_alike() {
    let Ctx { api, .. } = setup().await;
    let run = api.start("conformance-noop", json!({})).await;
    api.wait_terminal(&run, Duration::from_secs(10)).await;

    // Only the canonical spelling of a run id names the run.
    assert_eq!(
        api.get(&format!("/v1/runs/{run}")).await.status,
        StatusCode::OK
    );
    let simple = run.replace('-', "");
    for other in [format!("%7B{run}%7D"), format!("urn:uuid:{run}"), simple] {
        assert_envelope(
            &api.get(&format!("/v1/runs/{other}")).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }

    // Last-Event-ID: garbage is refused, ASCII or not, instead of replaying from 0.
    for bad in ["abc".as_bytes(), "é".as_bytes(), b"\xff\xfe"] {
        let r = Api::send(
            api.request(Method::GET, &format!("/v1/runs/{run}/events"))
                .header(
                    "Last-Event-ID",
                    reqwest::header::HeaderValue::from_bytes(bad).unwrap(),
                ),
        )
        .await;
        assert_envelope(&r, StatusCode::BAD_REQUEST, "validation_error");
        assert_eq!(r.body["details"]["field"], "Last-Event-ID");
    }

    // Poll bounds are the documented ones.
    for q in [
        "timeout=-645",
        "timeout=0",
        "timeout=61",
        "timeout=abc",
        "lastSequence=-1",
        "lastSequence=2147483648",
    ] {
        let r = api.get(&format!("/v1/runs/{run}/events/poll?{q}")).await;
        assert_envelope(&r, StatusCode::BAD_REQUEST, "validation_error");
    }
    let r = api
        .get(&format!(
            "/v1/runs/{run}/events/poll?timeout=1&lastSequence=2147483647"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn every_405_says_what_is_allowed_and_options_agrees() {
    let Ctx { api, .. } = setup().await;
    let run = "0190a0a0-1234-7000-8000-00000000abcd";
    let cases = [
        (
            Method::DELETE,
            format!("/v1/runs/{run}"),
            "GET, HEAD, OPTIONS",
        ),
        (
            Method::GET,
            format!("/v1/runs/{run}:cancel"),
            "OPTIONS, POST",
        ),
        (
            Method::PUT,
            format!("/v1/runs/{run}/cancel"),
            "OPTIONS, POST",
        ),
        (Method::GET, "/v1/runs".to_string(), "OPTIONS, POST"),
        (
            Method::POST,
            "/.well-known/openwop".to_string(),
            "GET, HEAD, OPTIONS",
        ),
    ];
    for (method, path, allow) in cases {
        let r = Api::send(api.request(method.clone(), &path)).await;
        assert_envelope(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        let o = Api::send(api.request(Method::OPTIONS, &path)).await;
        assert_eq!(o.status, StatusCode::NO_CONTENT, "OPTIONS {path}");
        assert_eq!(o.header("allow"), Some(allow), "OPTIONS {path}");
    }
    let r = Api::send(api.request(Method::OPTIONS, "/v1/nothing")).await;
    assert_envelope(&r, StatusCode::NOT_FOUND, "not_found");
}
