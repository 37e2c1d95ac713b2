//! Backpressure: overload is answered, not suffered.
//!
//! - A cap on requests in flight (`OPENWOP_MAX_IN_FLIGHT`): beyond it, 503
//!   `service_unavailable` with `Retry-After` (and the same value in `details.retryAfter`).
//! - A cap on open event streams and long polls (`OPENWOP_MAX_STREAMS`), which live long and
//!   are counted apart: beyond it, 429 `rate_limited` with `Retry-After`, never a silent drop.
//! - A per-key request rate (`OPENWOP_RATE_LIMIT` per second, bursts of `OPENWOP_RATE_BURST`),
//!   checked right after authentication and before scopes: 429 `rate_limited`.
//!
//! All are per edge process; run more edges to serve more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::SharedState;

/// Seconds a refused caller is told to wait.
const RETRY_AFTER_S: u64 = 1;

pub struct Admission {
    in_flight: Option<Arc<Semaphore>>,
    streams: Option<Arc<Semaphore>>,
    rate: Option<RateLimiter>,
}

impl Admission {
    pub fn new(max_in_flight: usize, max_streams: usize, rate_per_s: f64, burst: f64) -> Admission {
        let cap = |n: usize| (n > 0).then(|| Arc::new(Semaphore::new(n)));
        Admission {
            in_flight: cap(max_in_flight),
            streams: cap(max_streams),
            rate: (rate_per_s > 0.0).then(|| RateLimiter::new(rate_per_s, burst.max(1.0))),
        }
    }

    /// A slot for one long-lived stream (SSE or long poll), held until dropped.
    pub fn stream_slot(&self) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        match &self.streams {
            None => Ok(None),
            Some(s) => s.clone().try_acquire_owned().map(Some).map_err(|_| {
                rate_limited("too many open event streams on this edge", "global", None)
            }),
        }
    }

    /// Spend one request of `key`'s rate.
    pub fn charge(&self, key: Uuid) -> Result<(), ApiError> {
        match &self.rate {
            None => Ok(()),
            Some(r) => r.take(key).map_err(|wait| {
                let mut e = rate_limited(
                    "this API key is sending requests too fast",
                    "key",
                    Some(r.per_s),
                );
                if let Some(d) = e.details.as_mut() {
                    d["retryAfterMs"] = json!(wait.as_millis() as u64);
                }
                e.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
                e
            }),
        }
    }
}

fn rate_limited(message: &str, scope: &str, limit: Option<f64>) -> ApiError {
    let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        .details(json!({ "scope": scope, "retryAfterMs": RETRY_AFTER_S * 1000 }));
    if let (Some(l), Some(d)) = (limit, e.details.as_mut()) {
        d["limit"] = json!(l);
    }
    e.retry_after = Some(RETRY_AFTER_S);
    e
}

/// Whether a path is a long-lived read (counted as a stream, not as a request in flight).
fn is_stream(path: &str) -> bool {
    path.ends_with("/events") || path.ends_with("/events/poll")
}

/// Middleware: admit the request or answer 503/429 at once.
pub async fn admit(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let slot = if is_stream(&path) {
        // SSE handlers take their own slot so it lives as long as the stream; long polls here.
        if path.ends_with("/events") {
            return next.run(req).await;
        }
        state.admission.stream_slot()
    } else {
        match &state.admission.in_flight {
            None => Ok(None),
            Some(s) => s.clone().try_acquire_owned().map(Some).map_err(|_| {
                let mut e = ApiError::unavailable("the edge is at its limit of requests in flight");
                e.retry_after = Some(RETRY_AFTER_S);
                e
            }),
        }
    };
    match slot {
        Ok(_permit) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Token buckets, one per API key.
struct RateLimiter {
    per_s: f64,
    burst: f64,
    buckets: Mutex<HashMap<Uuid, (f64, Instant)>>,
}

impl RateLimiter {
    fn new(per_s: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            per_s,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take a token, or say how long until one is there.
    fn take(&self, key: Uuid) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() > 100_000 {
            buckets.clear(); // a bound on memory; a cleared bucket starts full
        }
        let now = Instant::now();
        let (tokens, at) = buckets.entry(key).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_s).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_s))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_rate() {
        let r = RateLimiter::new(10.0, 3.0);
        let k = Uuid::nil();
        assert!(r.take(k).is_ok() && r.take(k).is_ok() && r.take(k).is_ok());
        let wait = r.take(k).unwrap_err();
        assert!(wait <= Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(120));
        assert!(r.take(k).is_ok());
        assert!(r.take(Uuid::max()).is_ok(), "keys have their own buckets");
    }

    #[test]
    fn stream_slots_run_out_and_come_back() {
        let a = Admission::new(0, 1, 0.0, 0.0);
        let slot = a.stream_slot().unwrap();
        assert_eq!(a.stream_slot().unwrap_err().code, "rate_limited");
        drop(slot);
        assert!(a.stream_slot().is_ok());
    }
}
