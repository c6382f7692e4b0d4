//! Load generator of `just bench webhooks`. Runs a webhook receiver on loopback (answering 204 at
//! once), registers it through `POST /projects/{id}/webhooks` for `task.created`, then measures:
//!
//! 1. throughput: `--events` `task.created` envelopes of that project published straight to the
//!    exchange, from the first publish until the receiver has every one (consumer, delivery queue,
//!    signing and HTTP, without the task service in the way);
//! 2. latency: `--rate` task creates per second for `--duration` seconds through `POST /tasks`; each
//!    is timed from the create's `201` (its transaction committed) to its webhook's arrival.
//!
//! Every request the receiver gets is checked against the secret (Standard Webhooks). Prints one
//! JSON summary; the webhook is deleted at the end. The token comes from the environment.
//!
//! ```text
//! ORDO_BENCH_TOKEN=<project owner> cargo run --release -p ordo-gateway --example webhook_load -- \
//!     --base-url http://127.0.0.1:18080/api/v1 --project-id <uuid> --exchange ordo.bench.events
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clap::Parser;
use hdrhistogram::Histogram;
use ordo_proto::events::v1 as pb;
use ordo_proto::events::v1::envelope::Payload;
use ordo_proto::prost::Message as _;
use ordo_testkit::Outgoing;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

#[derive(Debug, Parser)]
struct Args {
    /// The gateway's API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080/api/v1")]
    base_url: String,
    /// The project whose webhook receives; the token's user must own or administer it.
    #[arg(long)]
    project_id: String,
    /// Access token of the project's owner.
    #[arg(long, env = "ORDO_BENCH_TOKEN", hide_env_values = true)]
    token: String,
    /// RabbitMQ URL.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// The exchange the notification service consumes from.
    #[arg(long, default_value = "ordo.events")]
    exchange: String,
    /// Events published for the throughput run.
    #[arg(long, default_value_t = 5000)]
    events: u64,
    /// Task creates per second of the latency run.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Seconds of creates.
    #[arg(long, default_value_t = 15)]
    duration: u64,
}

/// What the receiver saw: each task's arrival, and requests whose signature did not verify.
#[derive(Default)]
struct Received {
    arrivals: Mutex<HashMap<String, Instant>>,
    requests: Mutex<u64>,
    unverified: Mutex<u64>,
    verifier: Mutex<Option<standardwebhooks::Webhook>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn receive(State(received): State<Arc<Received>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    *lock(&received.requests) += 1;
    let verified = lock(&received.verifier).as_ref().is_some_and(|v| v.verify(&body, &headers).is_ok());
    if !verified {
        *lock(&received.unverified) += 1;
    }
    let task_id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|event| event["data"]["task"]["task_id"].as_str().map(str::to_owned));
    if let Some(task_id) = task_id {
        lock(&received.arrivals).entry(task_id).or_insert(at);
    }
    StatusCode::NO_CONTENT
}

/// A `task.created` envelope of `project` for a task of its own; its task id.
fn created(n: u64, project: &str) -> (String, Outgoing) {
    let task_id = uuid::Uuid::now_v7().to_string();
    let now = std::time::SystemTime::now();
    let envelope = pb::Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        r#type: "task.created".to_owned(),
        occurred_at: Some(ordo_proto::prost_types::Timestamp::from(now)),
        producer: "bench".to_owned(),
        entity_type: "task".to_owned(),
        entity_id: task_id.clone(),
        project_id: project.to_owned(),
        payload: Some(Payload::TaskCreated(pb::TaskCreated {
            task: Some(pb::TaskSnapshot {
                task_id: task_id.clone(),
                project_id: project.to_owned(),
                key: format!("LOAD-{n}"),
                title: format!("Load task {n}"),
                status: "todo".to_owned(),
                priority: "none".to_owned(),
                version: 1,
                ..Default::default()
            }),
            ..Default::default()
        })),
        ..Default::default()
    };
    let message = Outgoing {
        routing_key: envelope.r#type.clone(),
        message_id: envelope.event_id.clone(),
        body: envelope.encode_to_vec(),
    };
    (task_id, message)
}

/// Waits until the receiver has every one of `ids` (or `limit` passes); how many it has.
async fn wait_for(received: &Received, ids: &HashSet<String>, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let got = ids.iter().filter(|id| lock(&received.arrivals).contains_key(*id)).count();
        if got == ids.len() || Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let base = args.base_url.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;

    // The receiver, and its webhook.
    let received = Arc::new(Received::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://127.0.0.1:{}/ordo", listener.local_addr()?.port());
    let app = Router::new().fallback(receive).with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let response = client
        .post(format!("{base}/projects/{}/webhooks", args.project_id))
        .bearer_auth(&args.token)
        .json(&json!({"url": url, "event_types": ["task.created"]}))
        .send()
        .await?;
    if response.status() != reqwest::StatusCode::CREATED {
        bail!("creating the webhook answered {}: {}", response.status(), response.text().await?);
    }
    let webhook: Value = response.json().await?;
    let secret = webhook["secret"].as_str().context("no secret")?;
    let webhook_id = webhook["id"].as_str().context("no id")?.to_owned();
    *lock(&received.verifier) = Some(standardwebhooks::Webhook::new(secret)?);

    // Throughput: events straight to the exchange.
    let (ids, messages): (HashSet<String>, Vec<Outgoing>) =
        (0..args.events).map(|n| created(n, &args.project_id)).unzip();
    let started = Instant::now();
    ordo_testkit::publish_all(&args.amqp_url, &args.exchange, messages).await?;
    let published = started.elapsed();
    let delivered = wait_for(&received, &ids, Duration::from_secs(600)).await;
    let throughput_seconds = started.elapsed().as_secs_f64();
    ensure!(delivered == ids.len(), "{} of {} events were delivered in time", delivered, ids.len());

    // Latency: creates at a steady rate through the API, each timed from its 201.
    let responses: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let errors: Arc<Mutex<HashMap<u16, u64>>> = Arc::default();
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / args.rate.max(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let in_flight = Arc::new(Semaphore::new(256));
    let mut sent = 0u64;
    while Instant::now() < deadline {
        ticks.tick().await;
        sent += 1;
        let permit = in_flight.clone().acquire_owned().await?;
        let body = json!({"project_id": args.project_id, "title": format!("Webhook load {sent}")});
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
                        lock(&responses).insert(id.to_owned(), at);
                    }
                }
                Ok(response) => *lock(&errors).entry(response.status().as_u16()).or_default() += 1,
                Err(_) => *lock(&errors).entry(0).or_default() += 1,
            }
        });
    }
    let _ = in_flight.acquire_many(256).await?;
    let acknowledged: HashMap<String, Instant> = lock(&responses).clone();
    let ids: HashSet<String> = acknowledged.keys().cloned().collect();
    let arrived = wait_for(&received, &ids, Duration::from_secs(30)).await;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    {
        let arrivals = lock(&received.arrivals);
        for (id, at) in &acknowledged {
            if let Some(arrival) = arrivals.get(id) {
                let micros = arrival.saturating_duration_since(*at).as_micros();
                latency.record(u64::try_from(micros).unwrap_or(u64::MAX).max(1))?;
            }
        }
    }
    let response = client
        .delete(format!("{base}/projects/{}/webhooks/{webhook_id}", args.project_id))
        .bearer_auth(&args.token)
        .send()
        .await?;
    ensure!(
        response.status() == reqwest::StatusCode::NO_CONTENT,
        "deleting the webhook answered {}",
        response.status()
    );

    let ms = |micros: u64| micros as f64 / 1000.0;
    let summary = json!({
        "throughput": {
            "events": args.events,
            "publish_seconds": published.as_secs_f64(),
            "seconds": throughput_seconds,
            "delivered_per_second": args.events as f64 / throughput_seconds,
        },
        "latency": {
            "rate": args.rate,
            "duration_seconds": args.duration,
            "sent": sent,
            "acknowledged": acknowledged.len(),
            "errors": *lock(&errors),
            "delivered": arrived,
            "lost": acknowledged.len() - arrived,
            "p50_ms": ms(latency.value_at_quantile(0.50)),
            "p99_ms": ms(latency.value_at_quantile(0.99)),
            "max_ms": ms(latency.max()),
        },
        "requests": *lock(&received.requests),
        "unverified": *lock(&received.unverified),
    });
    println!("{summary}");
    Ok(())
}
