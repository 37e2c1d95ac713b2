//! Edge configuration, read once from the environment. Every knob is documented in the README.

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// `OPENWOP_DATABASE_URL`: the database holding the openwop extension.
    pub database_url: String,
    /// `OPENWOP_LISTEN`: where to serve HTTP (default 127.0.0.1:8080).
    pub listen: SocketAddr,
    /// `OPENWOP_PUBLIC_URL`: base of the absolute URLs the edge hands out (eventsUrl,
    /// statusUrl). Default: derived from the request's Host header.
    pub public_url: Option<String>,
    /// `OPENWOP_POOL_SIZE`: pooled database connections (default 16).
    pub pool_size: usize,
    /// `OPENWOP_MAX_BODY_BYTES`: largest accepted request body (default 1 MiB).
    pub max_body_bytes: usize,
    /// `OPENWOP_SSE_KEEPALIVE_SECS`: comment frame interval on idle SSE streams (default 15).
    pub sse_keepalive: Duration,
    /// `OPENWOP_AUTH_CACHE_MS`: how long a key lookup is reused (default 5000; 0 disables).
    /// A revoked key stops working within this time.
    pub auth_cache: Duration,
    /// `OPENWOP_DB_TIMEOUT_MS`: longest wait for a pooled connection (default 5000).
    pub db_wait: Duration,
    /// `OPENWOP_MAX_IN_FLIGHT`: requests served at once before 503 (default 512; 0: no cap).
    pub max_in_flight: usize,
    /// `OPENWOP_MAX_STREAMS`: open SSE streams and long polls before 429 (default 10000; 0: no cap).
    pub max_streams: usize,
    /// `OPENWOP_RATE_LIMIT`: requests per second per API key (default 1000; 0: no limit).
    pub rate_limit: f64,
    /// `OPENWOP_RATE_BURST`: requests a key may send at once (default 2 x the rate).
    pub rate_burst: f64,
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let num = |k: &str, default: u64| -> Result<u64, String> {
            var(k).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| format!("{k} must be a non-negative integer, got {v:?}"))
            })
        };
        let listen = var("OPENWOP_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into());
        Ok(Config {
            database_url: var("OPENWOP_DATABASE_URL")
                .or_else(|| var("DATABASE_URL"))
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:54329/openwop".into()),
            listen: listen
                .parse()
                .map_err(|_| format!("OPENWOP_LISTEN must be host:port, got {listen:?}"))?,
            public_url: var("OPENWOP_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string()),
            pool_size: num("OPENWOP_POOL_SIZE", 16)?.max(1) as usize,
            max_body_bytes: num("OPENWOP_MAX_BODY_BYTES", 1 << 20)? as usize,
            sse_keepalive: Duration::from_secs(num("OPENWOP_SSE_KEEPALIVE_SECS", 15)?.clamp(1, 30)),
            auth_cache: Duration::from_millis(num("OPENWOP_AUTH_CACHE_MS", 5000)?),
            db_wait: Duration::from_millis(num("OPENWOP_DB_TIMEOUT_MS", 5000)?.max(1)),
            max_in_flight: num("OPENWOP_MAX_IN_FLIGHT", 512)? as usize,
            max_streams: num("OPENWOP_MAX_STREAMS", 10_000)? as usize,
            rate_limit: num("OPENWOP_RATE_LIMIT", 1000)? as f64,
            rate_burst: var("OPENWOP_RATE_BURST")
                .map(|v| {
                    v.parse::<f64>()
                        .map_err(|_| format!("OPENWOP_RATE_BURST must be a number, got {v:?}"))
                })
                .transpose()?
                .unwrap_or(0.0),
        })
    }
}
