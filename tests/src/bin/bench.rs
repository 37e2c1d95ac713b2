//! `openwop-bench`: start N runs over HTTP at concurrency C and report throughput and latency.
//!
//!   openwop-bench --url http://127.0.0.1:18080 --key <api key> [--runs 2000] [--concurrency 32]
//!                 [--workflow conformance-multi-node]
//!
//! Per run: POST /v1/runs (the POST latency), then long-poll its events until the log is
//! complete (POST-to-terminal latency: the time from sending the POST to receiving the
//! terminal event, which the edge learns from the workers' NOTIFY).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Sample {
    post: Duration,
    terminal: Duration,
    events: usize,
}

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

async fn one_run(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    workflow: &str,
) -> Result<Sample, String> {
    let t0 = Instant::now();
    let resp = http
        .post(format!("{url}/v1/runs"))
        .bearer_auth(key)
        .json(&json!({ "workflowId": workflow }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().as_u16() != 201 {
        return Err(format!("POST {}", resp.status()));
    }
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    let post = t0.elapsed();
    let run = body["runId"].as_str().ok_or("no runId")?.to_string();
    let mut cursor = 0i64;
    let mut events = 0usize;
    loop {
        let page: Value = http
            .get(format!(
                "{url}/v1/runs/{run}/events/poll?lastSequence={cursor}&timeout=30"
            ))
            .bearer_auth(key)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let batch = page["events"].as_array().cloned().unwrap_or_default();
        events += batch.len();
        if let Some(last) = batch.last() {
            cursor = last["sequence"].as_i64().unwrap_or(cursor);
        }
        if page["isComplete"] == true {
            return Ok(Sample {
                post,
                terminal: t0.elapsed(),
                events,
            });
        }
    }
}

#[tokio::main]
async fn main() {
    let url = arg("--url", "http://127.0.0.1:18080");
    let key = arg("--key", "");
    let runs: usize = arg("--runs", "2000").parse().expect("--runs");
    let concurrency: usize = arg("--concurrency", "32").parse().expect("--concurrency");
    let workflow = arg("--workflow", "conformance-multi-node");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .build()
        .unwrap();

    // Warm up connections and caches; not measured.
    for _ in 0..concurrency.min(20) {
        let _ = one_run(&http, &url, &key, &workflow).await;
    }

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, key, workflow, next) = (
            http.clone(),
            url.clone(),
            key.clone(),
            workflow.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < runs {
                out.push(one_run(&http, &url, &key, &workflow).await);
            }
            out
        }));
    }
    let mut samples = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        for r in t.await.unwrap() {
            match r {
                Ok(s) => samples.push(s),
                Err(e) => errors.push(e),
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let mut post: Vec<Duration> = samples.iter().map(|s| s.post).collect();
    let mut term: Vec<Duration> = samples.iter().map(|s| s.terminal).collect();
    post.sort();
    term.sort();
    let events: usize = samples.iter().map(|s| s.events).sum();
    println!(
        "workflow {workflow}: {} runs ok, {} errors, concurrency {concurrency}, {wall:.2} s",
        samples.len(),
        errors.len()
    );
    println!(
        "throughput: {:.0} runs/s, {:.0} events/s",
        samples.len() as f64 / wall,
        events as f64 / wall
    );
    println!(
        "POST /v1/runs ms:        p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        pct(&post, 0.5),
        pct(&post, 0.9),
        pct(&post, 0.99),
        pct(&post, 1.0)
    );
    println!(
        "POST-to-terminal ms:     p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        pct(&term, 0.5),
        pct(&term, 0.9),
        pct(&term, 0.99),
        pct(&term, 1.0)
    );
    if let Some(e) = errors.first() {
        println!("first error: {e}");
        std::process::exit(1);
    }
}
