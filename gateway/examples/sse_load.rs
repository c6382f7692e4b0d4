//! Load generator of `just bench notifications` for the live stream. Opens `--idle-streams`
//! `GET /notifications/stream` connections as one user and holds them (the architecture's many
//! concurrent users), then, while they stay open, creates `--rate` tasks per second for
//! `--duration` seconds through `POST /tasks`, each assigned to the watcher, whose own stream
//! receives the notification. Latency runs from the create's HTTP response to the notification's
//! arrival on the stream. Reports lost and duplicated notifications, and the resident memory of the
//! processes named in `--pid` before the streams, with them open, and at the end. Prints one JSON
//! summary. Tokens come from the environment, so they stay off the command line; raise the file
//! limit (`ulimit -n`) before running it with thousands of streams.
//!
//! ```text
//! ORDO_BENCH_TOKEN=<actor> ORDO_BENCH_WATCHER_TOKEN=<watcher> ORDO_BENCH_IDLE_TOKEN=<idle user> \
//!   cargo run --release -p ordo-gateway --example sse_load -- --base-url http://127.0.0.1:18080/api/v1 \
//!     --project-id <uuid> --watcher-id <uuid> --pid gateway=<pid> --pid notification=<pid>
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
struct Args {
    /// The gateway's API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080/api/v1")]
    base_url: String,
    /// The project the tasks are created in; the actor must be a member, the watcher too.
    #[arg(long)]
    project_id: String,
    /// The watcher's user id: every task is assigned to them.
    #[arg(long)]
    watcher_id: String,
    /// Access token of the user creating the tasks.
    #[arg(long, env = "ORDO_BENCH_TOKEN", hide_env_values = true)]
    token: String,
    /// Access token of the watcher.
    #[arg(long, env = "ORDO_BENCH_WATCHER_TOKEN", hide_env_values = true)]
    watcher_token: String,
    /// Access token of the user holding the idle streams.
    #[arg(long, env = "ORDO_BENCH_IDLE_TOKEN", hide_env_values = true)]
    idle_token: String,
    /// Streams held open beside the watcher's.
    #[arg(long, default_value_t = 10_000)]
    idle_streams: usize,
    /// Task creates per second.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Seconds of creates.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// A process whose resident memory is reported, as `name=pid` (repeatable).
    #[arg(long = "pid", value_parser = parse_pid)]
    pids: Vec<(String, u32)>,
}

fn parse_pid(raw: &str) -> Result<(String, u32), String> {
    let (name, pid) = raw.split_once('=').ok_or("expected name=pid")?;
    Ok((name.to_owned(), pid.parse().map_err(|_| "the pid is not a number")?))
}

/// Resident memory of `pid` in KiB, from `/proc`.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("no figure")?.parse()?)
}

fn rss_all(pids: &[(String, u32)]) -> anyhow::Result<HashMap<String, u64>> {
    pids.iter().map(|(name, pid)| Ok((name.clone(), rss_kib(*pid)?))).collect()
}

/// Opens a stream as `token`; the response once its headers are in.
async fn open(client: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<reqwest::Response> {
    let response = client.get(format!("{base}/notifications/stream")).bearer_auth(token).send().await?;
    if response.status() != reqwest::StatusCode::OK {
        bail!("the stream answered {}", response.status());
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let base = args.base_url.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let stop = CancellationToken::new();
    let rss_before = rss_all(&args.pids)?;

    // The idle streams, opened 256 at a time; each is read (and dropped) until the end.
    let opening = Arc::new(Semaphore::new(256));
    let mut opened = Vec::with_capacity(args.idle_streams);
    for _ in 0..args.idle_streams {
        let permit = opening.clone().acquire_owned().await?;
        let (client, base, token, stop) = (client.clone(), base.clone(), args.idle_token.clone(), stop.clone());
        opened.push(tokio::spawn(async move {
            let response = open(&client, &base, &token).await;
            drop(permit);
            let mut body = response?.bytes_stream();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        chunk = body.next() => if chunk.is_none() { return },
                    }
                }
            });
            anyhow::Ok(())
        }));
    }
    let mut idle_open = 0;
    let mut idle_failed: HashMap<String, u64> = HashMap::new();
    for handle in opened {
        match handle.await? {
            Ok(()) => idle_open += 1,
            Err(error) => *idle_failed.entry(error.to_string()).or_default() += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_open = rss_all(&args.pids)?;

    // The watcher's stream: when each task's notification arrived.
    let arrivals: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let mut events = open(&client, &base, &args.watcher_token).await?.bytes_stream().eventsource();
    let reader = {
        let (arrivals, stop) = (arrivals.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    () = stop.cancelled() => return,
                    event = events.next() => event,
                };
                let Some(Ok(event)) = event else { return };
                if event.event != "notification" {
                    continue;
                }
                let at = Instant::now();
                let task_id = serde_json::from_str::<Value>(&event.data)
                    .ok()
                    .and_then(|n| n["task_id"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                arrivals.lock().unwrap_or_else(PoisonError::into_inner).push((task_id, at));
            }
        })
    };

    // The creates, at a steady rate; each response's time by task id.
    let responses: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let errors: Arc<Mutex<HashMap<u16, u64>>> = Arc::default();
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / args.rate.max(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let in_flight = Arc::new(Semaphore::new(256));
    let mut n = 0u64;
    while Instant::now() < deadline {
        ticks.tick().await;
        n += 1;
        let permit = in_flight.clone().acquire_owned().await?;
        let body = json!({"project_id": args.project_id, "title": format!("Load task {n}"), "assignee_ids": [args.watcher_id]});
        let request = client.post(format!("{base}/tasks")).bearer_auth(&args.token).json(&body);
        let (responses, errors) = (responses.clone(), errors.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match request.send().await {
                Ok(response) if response.status() == reqwest::StatusCode::CREATED => {
                    let at = Instant::now();
                    if let Ok(task) = response.json::<Value>().await
                        && let Some(id) = task["id"].as_str()
                    {
                        responses.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_owned(), at);
                    }
                }
                Ok(response) => {
                    *errors
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(response.status().as_u16())
                        .or_default() += 1
                }
                Err(_) => *errors.lock().unwrap_or_else(PoisonError::into_inner).entry(0).or_default() += 1,
            }
        });
    }
    // Every create answered, then a grace period for the last notifications.
    let _ = in_flight.acquire_many(256).await?;
    let created = responses.lock().unwrap_or_else(PoisonError::into_inner).len();
    for _ in 0..100 {
        if arrivals.lock().unwrap_or_else(PoisonError::into_inner).len() >= created {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_end = rss_all(&args.pids)?;
    stop.cancel();
    let _ = reader.await;

    let responses = responses.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let arrivals = arrivals.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut seen: HashMap<&str, u32> = HashMap::new();
    for (task_id, at) in &arrivals {
        *seen.entry(task_id.as_str()).or_default() += 1;
        if let Some(responded) = responses.get(task_id) {
            // A notification may beat its own create's response to the client: that is 0.
            latency.saturating_record(at.saturating_duration_since(*responded).as_micros().max(1) as u64);
        }
    }
    let lost = responses.keys().filter(|id| !seen.contains_key(id.as_str())).count();
    let duplicated = seen.values().filter(|count| **count > 1).count();
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let per_stream = |name: &str| -> Value {
        match (rss_before.get(name), rss_open.get(name)) {
            (Some(before), Some(open)) if idle_open > 0 => {
                json!(((*open as f64 - *before as f64) * 1024.0 / idle_open as f64).round())
            }
            _ => Value::Null,
        }
    };
    let summary = json!({
        "rate": args.rate,
        "duration_seconds": args.duration,
        "created": created,
        "create_errors": *errors.lock().unwrap_or_else(PoisonError::into_inner),
        "received": arrivals.len(),
        "lost": lost,
        "duplicated": duplicated,
        "latency_ms": {"p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "max": ms(1.0)},
        "idle_streams": {"asked": args.idle_streams, "open": idle_open, "failed": idle_failed},
        "rss_kib": {"before_streams": rss_before, "streams_open": rss_open, "end": rss_end},
        "bytes_per_stream": {"gateway": per_stream("gateway"), "notification": per_stream("notification")},
    });
    println!("{summary}");
    Ok(())
}
