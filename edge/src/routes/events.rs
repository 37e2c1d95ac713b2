//! Reading a run's events: the SSE stream (`GET /v1/runs/{runId}/events`) and the long poll
//! (`GET /v1/runs/{runId}/events/poll`). Both read through `openwop.event_docs` and wait on
//! this process's single LISTEN fan-out, never on a connection of their own.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use crate::auth::Caller;
use crate::db::{event_seq, event_type, parse_run_id, EventPage};
use crate::error::{ApiError, ApiResult};
use crate::listen::Notice;
use crate::protocol::{EventType, Tier};
use crate::state::SharedState;

/// Events fetched per read.
const PAGE: i32 = 500;
/// Even with no notice, re-check this often (covers a notice lost while LISTEN reconnects).
const SAFETY_RECHECK: Duration = Duration::from_secs(5);

/// How long a live stream rides out a database outage before it gives up.
const OUTAGE_TOLERANCE: Duration = Duration::from_secs(60);

/// The long poll's `lastSequence` range (sequences are 32-bit) and `timeout` range in
/// seconds; the OpenAPI document publishes the same bounds.
pub const POLL_LAST_SEQUENCE: (i64, i64) = (0, i32::MAX as i64);
pub const POLL_TIMEOUT_SECS: (i64, i64) = (1, 60);

/// Stream modes this host serves.
pub const SUPPORTED_MODES: &[&str] = &["updates", "debug"];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Updates,
    Debug,
}

/// The documented shape of `?streamMode`: empty, or a comma-separated list of the modes this
/// host serves (exactly what `parse_modes` accepts).
pub fn stream_mode_pattern() -> String {
    let one = format!("({})", SUPPORTED_MODES.join("|"));
    format!("^({one}(,{one})*)?$")
}

/// `?streamMode=a[,b]`: default `updates`; any mode we do not serve is refused up front.
pub fn parse_modes(raw: Option<&str>) -> ApiResult<Mode> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(Mode::Updates);
    };
    let mut mode = Mode::Updates;
    for m in raw.split(',') {
        match m {
            "updates" => {}
            "debug" => mode = Mode::Debug,
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unsupported_stream_mode",
                    format!("stream mode {other:?} is not supported; supported: updates, debug"),
                )
                .details(json!({ "supported": SUPPORTED_MODES, "requested": raw })))
            }
        }
    }
    Ok(mode)
}

fn admitted(mode: Mode, t: &str) -> bool {
    mode == Mode::Debug || EventType::tier_of(t) == Tier::Updates
}

fn frame(doc: &Value) -> Event {
    Event::default()
        .id(event_seq(doc).to_string())
        .event(event_type(doc))
        .data(doc.to_string())
}

pub async fn stream(
    State(state): State<SharedState>,
    caller: Caller,
    headers: HeaderMap,
    run: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Response> {
    caller.require("runs:read")?;
    let query = super::query_params(query)?;
    let mode = parse_modes(query.get("streamMode").map(String::as_str))?;
    let id = parse_run_id(&super::path_param(run)?)?;
    let after = last_event_id(&headers)?;
    // A stream holds its slot for as long as it is open.
    let slot = state.admission.stream_slot()?;
    // Subscribe before the first read so no event can slip between the read and the wait.
    let notices = state.notices.subscribe();
    let first = state
        .db
        .event_docs(&caller.tenant, id, after, PAGE, 1)
        .await?;
    tracing::info!(run_id = %id, tenant = %caller.tenant, after, "SSE stream opened");

    let (tx, mut rx) = mpsc::channel::<Event>(64);
    let (state2, tenant) = (state.clone(), caller.tenant.clone());
    tokio::spawn(async move {
        let _slot = slot;
        follow(state2, tenant, id, after, mode, first, notices, tx).await
    });
    let events = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| o.map(Ok::<_, Infallible>))
    });
    Ok(Sse::new(events)
        .keep_alive(
            KeepAlive::new()
                .interval(state.config.sse_keepalive)
                .text("keepalive"),
        )
        .into_response())
}

/// What a `Last-Event-ID` may be: empty, -1 (both: from the start) or a sequence number. The
/// OpenAPI document publishes this pattern, and the header is checked against it, so the two
/// cannot drift.
pub const LAST_EVENT_ID_PATTERN: &str = "^(-1|[0-9]{1,9})?$";

/// The `Last-Event-ID` header: the sequence of the last event the client has (-1: none).
/// Anything the pattern refuses, ASCII or not, is a 400: silently replaying from the start
/// would hand the client events it already has.
fn last_event_id(headers: &HeaderMap) -> ApiResult<i32> {
    static PATTERN: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let Some(raw) = headers.get("last-event-id") else {
        return Ok(-1);
    };
    let text = String::from_utf8_lossy(raw.as_bytes());
    let valid = PATTERN
        .get_or_init(|| {
            jsonschema::validator_for(
                &json!({ "type": "string", "pattern": LAST_EVENT_ID_PATTERN }),
            )
            .expect("the Last-Event-ID pattern compiles")
        })
        .is_valid(&json!(text));
    match text.parse::<i32>() {
        _ if !valid => Err(ApiError::validation(
            format!("Last-Event-ID must be an event sequence number, got {text:?}"),
            "Last-Event-ID",
        )),
        Ok(n) => Ok(n),
        Err(_) => Ok(-1), // empty
    }
}

/// Feed one SSE client: the backfill, then live pages as notices arrive, ending after the
/// terminal event. Sequence numbers only move forward, so nothing is sent twice.
#[allow(clippy::too_many_arguments)]
async fn follow(
    state: SharedState,
    tenant: String,
    run: Uuid,
    mut seen: i32,
    mode: Mode,
    first: EventPage,
    mut notices: broadcast::Receiver<Arc<Notice>>,
    tx: mpsc::Sender<Event>,
) {
    let mut page = first;
    loop {
        let full = page.events.len() as i32 >= PAGE;
        for doc in &page.events {
            let seq = event_seq(doc);
            if seq <= seen {
                continue;
            }
            seen = seq;
            if admitted(mode, event_type(doc)) && tx.send(frame(doc)).await.is_err() {
                return; // the client went away
            }
            if EventType::is_terminal_name(event_type(doc)) {
                return;
            }
        }
        if page.is_terminal() && !full {
            return; // terminal and nothing after `seen`: nothing more will come
        }
        if !full && !wait_for(&mut notices, run, seen, SAFETY_RECHECK, Some(&tx)).await {
            return;
        }
        page = match read_page(&state, &tenant, run, seen, &tx).await {
            Some(p) => p,
            None => return,
        };
    }
}

/// Read the next page for a live stream. While the database is unavailable (a restart, crash
/// recovery) keep the stream open and retry for up to `OUTAGE_TOLERANCE`; give up on any other
/// error or when the client has gone.
async fn read_page(
    state: &SharedState,
    tenant: &str,
    run: Uuid,
    seen: i32,
    tx: &mpsc::Sender<Event>,
) -> Option<EventPage> {
    let deadline = Instant::now() + OUTAGE_TOLERANCE;
    loop {
        match state.db.event_docs(tenant, run, seen, PAGE, 1).await {
            Ok(p) => return Some(p),
            Err(e)
                if e.status == StatusCode::SERVICE_UNAVAILABLE
                    && Instant::now() < deadline
                    && !tx.is_closed() =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => {
                tracing::warn!(run_id = %run, error_code = %e.code, "SSE stream ended by a read error");
                return None;
            }
        }
    }
}

/// Wait until a notice says `run` has events after `seen`, or `limit` passes. Returns false
/// when `client` (an SSE stream's sender) has gone away.
async fn wait_for(
    notices: &mut broadcast::Receiver<Arc<Notice>>,
    run: Uuid,
    seen: i32,
    limit: Duration,
    client: Option<&mpsc::Sender<Event>>,
) -> bool {
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let gone = async {
        match client {
            Some(tx) => tx.closed().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(gone);
    loop {
        tokio::select! {
            n = notices.recv() => match n {
                Ok(n) if n.concerns(run, seen) => return true,
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => return true,
                Err(broadcast::error::RecvError::Closed) => return true,
            },
            _ = &mut deadline => return true,
            _ = &mut gone => return false,
        }
    }
}

pub async fn poll(
    State(state): State<SharedState>,
    caller: Caller,
    run: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult<Response> {
    caller.require("runs:read")?;
    let query = super::query_params(query)?;
    let id = parse_run_id(&super::path_param(run)?)?;
    let int = |name: &str| -> ApiResult<Option<i64>> {
        query
            .get(name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    ApiError::validation(format!("{name} must be an integer, got {v:?}"), name)
                })
            })
            .transpose()
    };
    let in_range = |name: &str, (min, max): (i64, i64)| -> ApiResult<Option<i64>> {
        match int(name)? {
            Some(n) if n < min || n > max => Err(ApiError::validation(
                format!("{name} must be between {min} and {max}, got {n}"),
                name,
            )),
            n => Ok(n),
        }
    };
    let last = in_range("lastSequence", POLL_LAST_SEQUENCE)?;
    let timeout = Duration::from_secs(in_range("timeout", POLL_TIMEOUT_SECS)?.unwrap_or(30) as u64);
    // v1 leaves the cursor's meaning open and clients send lastSequence=0 to mean "from the
    // start": absent or 0 reads from sequence 0; N > 0 reads events after N.
    let after = match last {
        None | Some(0) => -1,
        Some(n) => n.min(i32::MAX as i64) as i32,
    };
    let mut notices = state.notices.subscribe();
    let deadline = Instant::now() + timeout;
    loop {
        let page = state
            .db
            .event_docs(&caller.tenant, id, after, PAGE, 1)
            .await?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if !page.events.is_empty() || page.is_terminal() || remaining.is_zero() {
            let complete = page.is_terminal() && (page.events.len() as i32) < PAGE;
            return Ok(
                Json(json!({ "events": page.events, "isComplete": complete })).into_response(),
            );
        }
        wait_for(
            &mut notices,
            id,
            after,
            Duration::min(remaining, SAFETY_RECHECK),
            None,
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_modes() {
        assert_eq!(parse_modes(None).unwrap(), Mode::Updates);
        assert_eq!(parse_modes(Some("updates,debug")).unwrap(), Mode::Debug);
        let e = parse_modes(Some("values")).unwrap_err();
        assert_eq!(e.code, "unsupported_stream_mode");
        assert_eq!(e.details.unwrap()["supported"], json!(["updates", "debug"]));
        assert!(parse_modes(Some("updates,messages")).is_err());
        assert!(parse_modes(Some(" updates")).is_err() && parse_modes(Some("updates,")).is_err());
        // The documented pattern accepts exactly what parse_modes accepts.
        let pattern =
            jsonschema::validator_for(&json!({ "pattern": stream_mode_pattern() })).unwrap();
        for s in [
            "",
            "updates",
            "debug",
            "debug,updates",
            "updates,debug,updates",
            " updates",
            "updates,",
            "values",
            ",",
            "Updates",
        ] {
            assert_eq!(
                pattern.is_valid(&json!(s)),
                parse_modes(Some(s)).is_ok(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn updates_mode_filters_node_started() {
        for t in [
            "run.started",
            "node.completed",
            "cap.breached",
            "run.failed",
        ] {
            assert!(admitted(Mode::Updates, t), "{t}");
        }
        for t in ["node.started", "vendor.custom"] {
            assert!(
                !admitted(Mode::Updates, t) && admitted(Mode::Debug, t),
                "{t}"
            );
        }
    }
}
