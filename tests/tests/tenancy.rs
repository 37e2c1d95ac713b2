//! Workspaces and key binding over HTTP: a key bound to a workspace starts runs there and
//! nowhere else; an unbound key names a workspace of its tenant (or the tenant itself) in
//! `tenantId`; the owner triple lands on the snapshot and on run.started.

use std::time::Duration;

use openwop_e2e::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn workspace_binding_decides_the_owner() {
    let Ctx {
        api,
        db,
        tenant,
        edge,
        ..
    } = setup().await;
    db.execute("SELECT openwop.create_workspace('blue', $1)", &[&tenant.id])
        .await
        .unwrap();
    let bound_key: String = db
        .query_one("SELECT openwop.create_api_key($1, 'blue key', openwop.all_scopes(), NULL, NULL, 'blue')", &[&tenant.id])
        .await
        .unwrap()
        .get(0);
    let bound = edge.api(&bound_key);

    let r = bound
        .post("/v1/runs", json!({ "workflowId": "conformance-noop" }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let run = r.body["runId"].as_str().unwrap().to_string();
    let snap = bound.wait_terminal(&run, Duration::from_secs(10)).await;
    assert_eq!(snap["owner"]["tenant"], tenant.id.as_str());
    assert_eq!(snap["owner"]["workspace"], "blue");
    assert!(snap["owner"]["principal"]
        .as_str()
        .unwrap()
        .starts_with("key:"));
    assert_eq!(
        bound.events(&run).await[0]["payload"]["owner"],
        snap["owner"]
    );

    let r = bound
        .post(
            "/v1/runs",
            json!({ "workflowId": "conformance-noop", "tenantId": "red" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"], "forbidden");
    let r = bound
        .post(
            "/v1/runs",
            json!({ "workflowId": "conformance-noop", "tenantId": tenant.id }),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "naming the key's own tenant is fine"
    );

    // An unbound key may name any workspace of its tenant, or the tenant itself.
    let r = api
        .post(
            "/v1/runs",
            json!({ "workflowId": "conformance-noop", "tenantId": "blue" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = api
        .post(
            "/v1/runs",
            json!({ "workflowId": "conformance-noop", "tenantId": "no-such-workspace" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api
        .post(
            "/v1/runs",
            json!({ "workflowId": "conformance-noop", "tenantId": tenant.id }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let snap = api
        .wait_terminal(r.body["runId"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    assert!(snap["owner"].get("workspace").is_none());
}

/// Regression: a tenant role could register a workflow with `is_fixture => true`, and its id
/// then appeared in the public discovery document. Only operators mark fixtures now.
#[tokio::test]
async fn a_tenant_cannot_publish_into_discovery() {
    let Ctx {
        db, tenant, edge, ..
    } = setup().await;
    let role = format!("{}_app", tenant.id);
    db.batch_execute(&format!("CREATE ROLE {role}"))
        .await
        .unwrap();
    db.execute(
        "SELECT openwop.grant_tenant_role($1, $2)",
        &[&role, &tenant.id],
    )
    .await
    .unwrap();
    let secret = format!("{}-secret-workflow", tenant.id);
    let definition = json!({
        "id": secret, "name": "S", "version": "1", "edges": [], "triggers": [], "variables": [],
        "metadata": {}, "settings": {},
        "nodes": [{ "id": "a", "typeId": "core.noop", "name": "A", "position": { "x": 0, "y": 0 },
                    "config": {}, "inputs": {} }]
    });
    db.batch_execute(&format!("SET ROLE {role}")).await.unwrap();
    let refused = db
        .query(
            "SELECT * FROM openwop.register_workflow($1, is_fixture => true)",
            &[&definition],
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code().unwrap().code(), "OW403");
    // A plain registration works, and stays private too.
    db.query(
        "SELECT * FROM openwop.register_workflow($1)",
        &[&definition],
    )
    .await
    .unwrap();
    db.batch_execute("RESET ROLE").await.unwrap();

    let doc = edge.anonymous().get("/.well-known/openwop").await;
    assert_eq!(doc.status, StatusCode::OK);
    let fixtures = doc.body["fixtures"].as_array().unwrap();
    assert!(fixtures.iter().any(|f| f == "conformance-noop"));
    assert!(
        !fixtures.iter().any(|f| f == secret.as_str()),
        "{fixtures:?}"
    );
}
