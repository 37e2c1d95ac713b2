//! The `edge` binary: configuration from the environment, structured logs, the database pool,
//! the LISTEN fan-out, and the HTTP server with a graceful shutdown on Ctrl-C / SIGTERM.

use edge::config::Config;
use edge::db::Db;
use edge::state::AppState;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let json_logs = std::env::var("OPENWOP_LOG_FORMAT").is_ok_and(|v| v == "json");
    let filter = EnvFilter::try_from_env("OPENWOP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if json_logs {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }

    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edge: {e}");
            std::process::exit(2);
        }
    };
    let db = match Db::connect(&config.database_url, config.pool_size, config.db_wait) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("edge: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = db.ping().await {
        tracing::warn!(error = %e.message, "the database is not reachable yet; requests will answer 503 until it is");
    }
    let state = AppState::new(db, config.clone());
    edge::listen::spawn(config.database_url.clone(), state.notices.clone());

    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("edge: cannot listen on {}: {e}", config.listen);
            std::process::exit(2);
        }
    };
    tracing::info!(listen = %config.listen, "edge serving OpenWOP v1");
    let listener = edge::malformed::EnvelopedListener(listener);
    let served = axum::serve(listener, edge::app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    if let Err(e) = served {
        eprintln!("edge: server error: {e}");
        std::process::exit(1);
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
