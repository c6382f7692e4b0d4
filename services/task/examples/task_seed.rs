//! Seeder of `just bench tasks`: creates `--tasks` tasks in one project through the task service's
//! gRPC `CreateTask`, `--concurrency` calls in flight, with the caller's token from `ORDO_BENCH_TOKEN`
//! (kept out of the command line, which the report prints). The tasks vary as a real board does:
//! every status and priority, zero to three labels of a small vocabulary, due dates from two months
//! ago to two months ahead or none, a description on some. Prints one JSON summary (tasks created,
//! errors, seconds, tasks per second).
//!
//! ```text
//! ORDO_BENCH_TOKEN=<access token> cargo run --release -p ordo-task --example task_seed -- \
//!     --task-url http://127.0.0.1:50153 --project-id <uuid> --tasks 10000
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::Parser;
use ordo_proto::task::v1 as pb;
use ordo_proto::task::v1::task_service_client::TaskServiceClient;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, Parser)]
struct Args {
    /// The task service's gRPC URL.
    #[arg(long, default_value = "http://127.0.0.1:50053")]
    task_url: String,
    /// The project to fill; the token's user must be a member or above.
    #[arg(long)]
    project_id: String,
    /// Access token of the user creating the tasks.
    #[arg(long, env = "ORDO_BENCH_TOKEN", hide_env_values = true)]
    token: String,
    /// Tasks to create.
    #[arg(long, default_value_t = 10_000)]
    tasks: u64,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the calls share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
}

const STATUSES: [pb::TaskStatus; 6] = [
    pb::TaskStatus::Backlog,
    pb::TaskStatus::Todo,
    pb::TaskStatus::InProgress,
    pb::TaskStatus::InReview,
    pb::TaskStatus::Done,
    pb::TaskStatus::Cancelled,
];
const PRIORITIES: [pb::TaskPriority; 5] = [
    pb::TaskPriority::None,
    pb::TaskPriority::Low,
    pb::TaskPriority::Medium,
    pb::TaskPriority::High,
    pb::TaskPriority::Urgent,
];
const LABELS: [&str; 8] = ["backend", "frontend", "bug", "feature", "docs", "infra", "ux", "performance"];
const DAY: i64 = 86_400;

/// SplitMix64: the same seed always gives the same board, so runs compare.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `n`th task of the board.
fn task(project_id: &str, n: u64, now: i64) -> pb::CreateTaskRequest {
    let r = mix(n);
    let pick = |shift: u32, len: usize| ((r >> shift) % len as u64) as usize;
    let labels = (0..pick(0, 4)).map(|i| LABELS[pick(8 + 3 * i as u32, LABELS.len())].to_owned()).collect();
    // One task in five has no due date; the others are due within two months either side of now.
    let due_at = (pick(20, 5) != 0).then(|| prost_types::Timestamp {
        seconds: now + (pick(24, 121) as i64 - 60) * DAY + pick(32, 24) as i64 * 3_600,
        nanos: 0,
    });
    pb::CreateTaskRequest {
        project_id: project_id.to_owned(),
        // Every title holds "work"; one in 500 also "quasar": the common and the rare word searched.
        title: format!(
            "Bench task {n}: {} work item{}",
            LABELS[pick(40, LABELS.len())],
            if n.is_multiple_of(500) { " quasar" } else { "" }
        ),
        description: (pick(44, 3) == 0).then(|| format!("Seeded by task_seed ({n}). Steps, context and notes.")),
        status: STATUSES[pick(48, STATUSES.len())] as i32,
        priority: PRIORITIES[pick(52, PRIORITIES.len())] as i32,
        labels,
        due_at,
        estimate_minutes: (pick(56, 2) == 0).then(|| (pick(58, 16) as i32 + 1) * 30),
        ..Default::default()
    }
}

/// Creates tasks until the shared counter passes `args.tasks`; returns (created, errors, first error).
async fn fill(
    mut client: TaskServiceClient<Channel>,
    args: Arc<Args>,
    next: Arc<AtomicU64>,
    now: i64,
) -> anyhow::Result<(u64, u64, Option<String>)> {
    let (mut created, mut errors, mut first_error) = (0, 0, None);
    let authorization: tonic::metadata::MetadataValue<_> = format!("Bearer {}", args.token).parse()?;
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= args.tasks {
            return Ok((created, errors, first_error));
        }
        let mut request = tonic::Request::new(task(&args.project_id, n, now));
        request.metadata_mut().insert("authorization", authorization.clone());
        match client.create_task(request).await {
            Ok(_) => created += 1,
            Err(status) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{:?}: {}", status.code(), status.message()));
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if args.concurrency == 0 || args.connections == 0 {
        bail!("--concurrency and --connections must be at least 1");
    }
    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let endpoint = Endpoint::from_shared(args.task_url.clone())?.tcp_nodelay(true);
        channels.push(endpoint.connect().await.context("connect to the task service")?);
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|i| {
            let client = TaskServiceClient::new(channels[i % channels.len()].clone());
            tokio::spawn(fill(client, args.clone(), next.clone(), now))
        })
        .collect();
    let (mut created, mut errors, mut first_error) = (0, 0, None);
    for worker in workers {
        let (worker_created, worker_errors, worker_error) = worker.await??;
        created += worker_created;
        errors += worker_errors;
        first_error = first_error.or(worker_error);
    }
    let seconds = started.elapsed().as_secs_f64();

    let summary = serde_json::json!({
        "tasks": created,
        "errors": errors,
        "first_error": first_error,
        "seconds": seconds,
        "per_second": created as f64 / seconds,
        "concurrency": args.concurrency,
        "connections": args.connections,
    });
    println!("{summary}");
    if errors > 0 {
        bail!("{errors} of {} creates failed", args.tasks);
    }
    Ok(())
}
