//! The one LISTEN connection of this edge process. The workers send
//! `NOTIFY openwop_events, '<run_id>:<seq>,<run_id>:<seq>,...'` in the transaction that
//! appends events; this task turns each notification into a `Notice` on a broadcast channel
//! that every SSE stream and long poll of this process watches. However many clients are
//! connected, that is one database connection.
//!
//! A notice only says "run R has events up to seq S"; readers fetch the events themselves, so
//! a lost or lagged notice costs latency, never data. After a reconnect a `Resync` tells
//! every reader to re-check.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::AsyncMessage;
use uuid::Uuid;

pub const CHANNEL: &str = "openwop_events";

#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Runs that got new events, with the sequence of each one's last new event.
    Events(Vec<(Uuid, i32)>),
    /// Notifications may have been missed: every reader should look again.
    Resync,
}

impl Notice {
    /// Whether a reader of `run` that has seen everything up to `seen` should look again.
    pub fn concerns(&self, run: Uuid, seen: i32) -> bool {
        match self {
            Notice::Events(pairs) => pairs.iter().any(|(r, s)| *r == run && *s > seen),
            Notice::Resync => true,
        }
    }

    pub fn parse(payload: &str) -> Notice {
        Notice::Events(
            payload
                .split(',')
                .filter_map(|pair| {
                    let (run, seq) = pair.trim().split_once(':')?;
                    Some((Uuid::parse_str(run).ok()?, seq.parse().ok()?))
                })
                .collect(),
        )
    }
}

/// Keep a LISTEN connection open for the life of the process, reconnecting with backoff.
pub fn spawn(url: String, tx: broadcast::Sender<Arc<Notice>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            match listen_once(&url, &tx).await {
                Ok(()) => tracing::warn!("LISTEN connection closed; reconnecting"),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection failed; retrying in {backoff:?}")
                }
            }
            let _ = tx.send(Arc::new(Notice::Resync));
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    })
}

async fn listen_once(
    url: &str,
    tx: &broadcast::Sender<Arc<Notice>>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let (ntx, mut nrx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if ntx.send(n.payload().to_string()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection error");
                    break;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    tracing::info!("listening for new events on channel {CHANNEL}");
    // Anything committed before LISTEN took effect was not announced to us: re-check.
    let _ = tx.send(Arc::new(Notice::Resync));
    while let Some(payload) = nrx.recv().await {
        let _ = tx.send(Arc::new(Notice::parse(&payload)));
    }
    driver.abort();
    drop(client);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_ignores_garbage() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let n = Notice::parse(&format!("{a}:3,{b}:10,nonsense,{a}:x"));
        assert_eq!(n, Notice::Events(vec![(a, 3), (b, 10)]));
        assert!(n.concerns(a, 2));
        assert!(!n.concerns(a, 3));
        assert!(!n.concerns(Uuid::now_v7(), -1));
        assert!(Notice::Resync.concerns(a, 100));
    }
}
