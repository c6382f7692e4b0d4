//! Load generator of `just bench tasks` for `POST /api/v1/tasks/{id}/move`, whose body changes with
//! every request (which `oha` cannot do). It creates a small board of `--tasks` tasks in one project
//! through the gateway, then keeps `--concurrency` moves in flight for `--duration` seconds: each moves
//! a random task right after or right before another random task, so the moves spread over the whole
//! board rather than splitting one gap again and again (which lengthens board keys). Prints one JSON
//! summary: requests, errors (by status), req/s, latency percentiles in ms, and the longest board key
//! after the run. The access token comes from `ORDO_BENCH_TOKEN`, so it stays off the command line.
//!
//! ```text
//! ORDO_BENCH_TOKEN=<access token> cargo run --release -p ordo-gateway --example move_load -- \
//!     --base-url http://127.0.0.1:18080/api/v1 --project-id <uuid>
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// The gateway's API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080/api/v1")]
    base_url: String,
    /// The project whose board is created and shuffled; the token's user must be a member or above.
    #[arg(long)]
    project_id: String,
    /// Access token of the user moving the tasks.
    #[arg(long, env = "ORDO_BENCH_TOKEN", hide_env_values = true)]
    token: String,
    /// Tasks on the board.
    #[arg(long, default_value_t = 200)]
    tasks: usize,
    /// Moves in flight at once (one HTTP/1.1 connection each).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of measured load (after a warm-up of 3 s).
    #[arg(long, default_value_t = 15)]
    duration: u64,
}

/// xorshift64*: enough randomness to pick tasks, no dependency.
struct Dice(u64);

impl Dice {
    fn new(stream: u64) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Self((nanos ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// Creates the board's tasks, 16 at a time; returns their ids.
async fn create_board(client: &reqwest::Client, args: &Args) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(args.tasks);
    for chunk in (0..args.tasks).collect::<Vec<_>>().chunks(16) {
        let creates = chunk.iter().map(|n| {
            client
                .post(format!("{}/tasks", args.base_url))
                .bearer_auth(&args.token)
                .json(&json!({ "project_id": args.project_id, "title": format!("Board card {n}") }))
                .send()
        });
        for response in futures::future::join_all(creates).await {
            let response = response?.error_for_status().context("create a board task")?;
            let task: Value = response.json().await?;
            ids.push(task["id"].as_str().context("a task without id")?.to_owned());
        }
    }
    Ok(ids)
}

/// What one mover saw: latencies of the moves that succeeded, and the others by status.
struct Tally {
    histogram: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

/// Moves random tasks until `until`.
async fn mover(
    client: reqwest::Client,
    args: Arc<Args>,
    ids: Arc<Vec<String>>,
    stream: u64,
    until: Instant,
) -> anyhow::Result<Tally> {
    let mut tally = Tally { histogram: Histogram::new_with_bounds(1, 60_000_000, 3)?, errors: BTreeMap::new() };
    let mut dice = Dice::new(stream);
    while Instant::now() < until {
        let task = dice.below(ids.len());
        // Any other task: `+ 1..len` never lands on the moved one.
        let neighbour = &ids[(task + 1 + dice.below(ids.len() - 1)) % ids.len()];
        let body =
            if dice.below(2) == 0 { json!({ "after_id": neighbour }) } else { json!({ "before_id": neighbour }) };
        let started = Instant::now();
        let outcome = client
            .post(format!("{}/tasks/{}/move", args.base_url, ids[task]))
            .bearer_auth(&args.token)
            .json(&body)
            .send()
            .await;
        let failure = match outcome {
            Ok(response) if response.status().is_success() => match response.bytes().await {
                Ok(_) => None,
                Err(_) => Some("body".to_owned()),
            },
            Ok(response) => {
                let status = response.status().as_u16().to_string();
                let _ = response.bytes().await;
                Some(status)
            }
            Err(error) if error.is_timeout() => Some("timeout".to_owned()),
            Err(_) => Some("connection".to_owned()),
        };
        match failure {
            None => {
                tally.histogram.saturating_record(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
            Some(kind) => *tally.errors.entry(kind).or_default() += 1,
        }
    }
    Ok(tally)
}

/// Keeps `concurrency` moves in flight until `seconds` pass.
async fn load(
    client: &reqwest::Client,
    args: &Arc<Args>,
    ids: &Arc<Vec<String>>,
    seconds: u64,
) -> anyhow::Result<(Tally, Duration)> {
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let movers: Vec<_> = (0..args.concurrency)
        .map(|i| tokio::spawn(mover(client.clone(), args.clone(), ids.clone(), i as u64, until)))
        .collect();
    let mut total = Tally { histogram: Histogram::new_with_bounds(1, 60_000_000, 3)?, errors: BTreeMap::new() };
    for mover in movers {
        let tally = mover.await??;
        total.histogram.add(tally.histogram)?;
        for (kind, n) in tally.errors {
            *total.errors.entry(kind).or_default() += n;
        }
    }
    Ok((total, started.elapsed()))
}

/// The longest `position` on the board after the run, in characters.
async fn longest_position(client: &reqwest::Client, args: &Args) -> anyhow::Result<usize> {
    let mut longest = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut request = client.get(format!("{}/tasks", args.base_url)).bearer_auth(&args.token).query(&[
            ("project_id", args.project_id.as_str()),
            ("sort", "position"),
            ("limit", "100"),
        ]);
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor.as_str())]);
        }
        let page: Value = request.send().await?.error_for_status()?.json().await?;
        for task in page["items"].as_array().context("a page without items")? {
            longest = longest.max(task["position"].as_str().map_or(0, str::len));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(longest),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if args.concurrency == 0 || args.tasks < 2 {
        bail!("--concurrency must be at least 1 and --tasks at least 2");
    }
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let ids = Arc::new(create_board(&client, &args).await?);
    let position_before = longest_position(&client, &args).await?;
    load(&client, &args, &ids, 3).await?;
    let (tally, elapsed) = load(&client, &args, &ids, args.duration).await?;
    let position_after = longest_position(&client, &args).await?;

    let histogram = &tally.histogram;
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let errors: u64 = tally.errors.values().sum();
    let summary = json!({
        "requests": histogram.len() + errors,
        "errors": errors,
        "errors_by_kind": tally.errors,
        "seconds": elapsed.as_secs_f64(),
        "rps": histogram.len() as f64 / elapsed.as_secs_f64(),
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "max_ms": histogram.max() as f64 / 1000.0,
        "concurrency": args.concurrency,
        "tasks": args.tasks,
        "longest_position_before": position_before,
        "longest_position_after": position_after,
    });
    println!("{summary}");
    Ok(())
}
