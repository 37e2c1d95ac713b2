//! The edge's shared state. The edge is stateless in the sense that matters: nothing here
//! is needed to answer a request correctly after a restart; caches only save round trips.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::admission::Admission;
use crate::auth::AuthCache;
use crate::config::Config;
use crate::db::Db;
use crate::discovery::DiscoveryCache;
use crate::listen::Notice;
use crate::validate::Schemas;

pub struct AppState {
    pub db: Db,
    pub config: Config,
    pub auth: AuthCache,
    /// New-event notices from the single LISTEN connection, fanned out to SSE and poll waiters.
    pub notices: broadcast::Sender<Arc<Notice>>,
    pub discovery: DiscoveryCache,
    pub schemas: Schemas,
    pub admission: Admission,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn new(db: Db, config: Config) -> SharedState {
        let (notices, _) = broadcast::channel(4096);
        let burst = if config.rate_burst > 0.0 {
            config.rate_burst
        } else {
            config.rate_limit * 2.0
        };
        Arc::new(AppState {
            admission: Admission::new(
                config.max_in_flight,
                config.max_streams,
                config.rate_limit,
                burst,
            ),
            auth: AuthCache::new(config.auth_cache),
            db,
            config,
            notices,
            discovery: DiscoveryCache::default(),
            schemas: Schemas::load(),
        })
    }
}
