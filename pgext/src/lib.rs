//! `openwop`: an OpenWOP workflow engine inside PostgreSQL.
//!
//! Layout: `engine/` is the pure workflow engine (model, expressions, node types, the step
//! function); `worker.rs` runs it in background workers; `wake.rs` wakes them at commit;
//! `api.rs` holds the SQL functions written in Rust; `guc.rs` the settings. The SQL API and
//! tables live in `sql/schema/` at the repository root, included below in order.

use pgrx::prelude::*;

pub mod api;
pub mod definition_check;
pub mod engine;
pub mod field_path;
pub mod guc;
#[cfg(test)]
mod properties;
pub mod protocol;
pub mod run_options;
pub mod schema_cache;
pub mod wake;
pub mod worker;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!(
    "../../sql/schema/0001_tables.sql",
    name = "tables",
    bootstrap
);
extension_sql_file!(
    "../../sql/schema/0002_helpers.sql",
    name = "helpers",
    requires = [api::_caller]
);
extension_sql_file!(
    "../../sql/schema/0003_tenants_keys.sql",
    name = "tenants_keys",
    requires = ["helpers", api::_uuid_v7]
);
extension_sql_file!(
    "../../sql/schema/0004_workflows.sql",
    name = "workflows",
    requires = [
        "tenants_keys",
        api::_check_definition,
        api::_fixture_definitions
    ]
);
extension_sql_file!(
    "../../sql/schema/0005_runs.sql",
    name = "runs",
    requires = [
        "workflows",
        api::_wake_at_commit,
        api::_resolve_limits,
        api::_check_json_schema
    ]
);
extension_sql_file!(
    "../../sql/schema/0006_events.sql",
    name = "events",
    requires = ["runs"]
);
extension_sql_file!(
    "../../sql/schema/0007_engine.sql",
    name = "engine",
    requires = ["events", api::_fold]
);
extension_sql_file!(
    "../../sql/schema/0009_host.sql",
    name = "host",
    requires = ["engine", api::_advertised_configurable]
);
extension_sql_file!(
    "../../sql/schema/0010_idempotency.sql",
    name = "idempotency",
    requires = ["host"]
);
extension_sql_file!(
    "../../sql/schema/0008_views.sql",
    name = "views",
    requires = ["idempotency"]
);
extension_sql_file!(
    "../../sql/schema/0011_security.sql",
    name = "security",
    finalize
);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    let preloading = unsafe { pg_sys::process_shared_preload_libraries_in_progress };
    guc::define(preloading);
    if !preloading {
        return; // loaded on demand: the SQL API works, workers and commit wake-ups need preloading
    }
    unsafe { wake::PRELOADED = true };
    use wake::SHARED;
    pgrx::pg_shmem_init!(SHARED = wake::Shared::new());
    worker::register();
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn uuid_v7_is_time_ordered() {
        let a = Spi::get_one::<pgrx::Uuid>("SELECT openwop._uuid_v7()")
            .unwrap()
            .unwrap();
        let b = Spi::get_one::<pgrx::Uuid>("SELECT openwop._uuid_v7()")
            .unwrap()
            .unwrap();
        assert!(a.as_bytes() < b.as_bytes());
        assert_eq!(a.as_bytes()[6] >> 4, 7, "version nibble");
    }

    #[pg_test]
    fn check_definition_reports_the_field() {
        let problem = Spi::get_one::<pgrx::JsonB>(
            r#"SELECT openwop._check_definition('{"id":"w","name":"W","version":"1","nodes":[{"id":"a","typeId":"core.nope","name":"A","position":{"x":0,"y":0},"config":{},"inputs":{}}],"edges":[],"triggers":[],"variables":[],"metadata":{},"settings":{}}')"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(problem.0["details"]["field"], "nodes[0].typeId");
    }

    #[pg_test]
    fn fixtures_are_valid_definitions() {
        let bad = Spi::get_one::<i64>(
            "SELECT count(*) FROM openwop._fixture_definitions() d WHERE openwop._check_definition(d) IS NOT NULL",
        )
        .unwrap()
        .unwrap();
        assert_eq!(bad, 0);
    }

    #[pg_test]
    fn start_run_creates_a_pending_run() {
        Spi::run("SELECT openwop.seed_fixtures()").unwrap();
        let id = Spi::get_one::<pgrx::Uuid>("SELECT openwop.start_run('conformance-noop')")
            .unwrap()
            .unwrap();
        let status =
            Spi::get_one_with_args::<String>("SELECT openwop.run($1)->>'status'", &[id.into()])
                .unwrap()
                .unwrap();
        assert_eq!(status, "pending");
    }

    #[pg_test(error = "missing required input 'nonce'")]
    fn start_run_refuses_a_missing_required_input() {
        Spi::run("SELECT openwop.seed_fixtures()").unwrap();
        Spi::run("SELECT openwop.start_run('conformance-idempotent', '{}')").unwrap();
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
