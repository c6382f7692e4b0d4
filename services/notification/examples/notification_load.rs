//! Load generator of `just bench notifications` for the consumer. Publishes `--events` `task.assigned`
//! envelopes (each of its own task, all assigning `--recipient`) to the exchange while a running
//! notification service consumes them, and measures how fast notifications are stored until every
//! one is. Prints one JSON summary. The recipient ends with that many notifications, which the
//! list scenario then pages through.
//!
//! ```text
//! cargo run --release -p ordo-notification --example notification_load -- \
//!     --database-url mysql://root@127.0.0.1:3306/ordo_bench_notification \
//!     --exchange ordo.bench.events --recipient <user id>
//! ```

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use ordo_proto::events::v1 as pb;
use ordo_proto::events::v1::envelope::Payload;
use ordo_testkit::Outgoing;
use prost::Message as _;
use uuid::Uuid;

#[derive(Debug, Parser)]
struct Args {
    /// The notification service's schema (read to see notifications arrive).
    #[arg(long)]
    database_url: String,
    /// RabbitMQ URL.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// The exchange the notification service consumes from.
    #[arg(long, default_value = "ordo.events")]
    exchange: String,
    /// Events to publish.
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// The user every event assigns a task to.
    #[arg(long)]
    recipient: Uuid,
}

fn assigned(n: u64, actor: &str, project: &str, recipient: &str) -> pb::Envelope {
    let task_id = Uuid::now_v7().to_string();
    let task = pb::TaskSnapshot {
        task_id: task_id.clone(),
        project_id: project.to_owned(),
        key: format!("LOAD-{n}"),
        title: format!("Load task {n}"),
        status: "todo".into(),
        priority: "none".into(),
        assignee_ids: vec![recipient.to_owned()],
        reporter_id: actor.to_owned(),
        due_at: None,
        version: 1,
    };
    ordo_events::EnvelopeBuilder::new("task", "task.assigned")
        .actor(actor)
        .entity("task", task_id)
        .project(project)
        .payload(Payload::TaskAssigned(pb::TaskAssigned { task: Some(task), assignee_id: recipient.to_owned() }))
        .build()
}

async fn stored(pool: &sqlx::MySqlPool, recipient: Uuid) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM notification WHERE user_id = ?")
        .bind(recipient)
        .fetch_one(pool)
        .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pool = ordo_platform::db::connect(&args.database_url, 2).await.context("connect to the notification schema")?;
    let before = stored(&pool, args.recipient).await?;
    let (actor, project, recipient) =
        (Uuid::now_v7().to_string(), Uuid::now_v7().to_string(), args.recipient.to_string());

    let started = Instant::now();
    let messages = (0..args.events).map(|n| {
        let envelope = assigned(n, &actor, &project, &recipient);
        Outgoing {
            routing_key: envelope.r#type.clone(),
            message_id: envelope.event_id.clone(),
            body: envelope.encode_to_vec(),
        }
    });
    ordo_testkit::publish_all(&args.amqp_url, &args.exchange, messages).await?;
    let published = started.elapsed();
    let target = before + i64::try_from(args.events)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while stored(&pool, args.recipient).await? < target {
        anyhow::ensure!(Instant::now() < deadline, "{target} notifications were not stored in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = started.elapsed();

    let summary = serde_json::json!({
        "events": args.events,
        "publish_seconds": published.as_secs_f64(),
        "store_seconds": done.as_secs_f64(),
        "stored_per_second": args.events as f64 / done.as_secs_f64(),
    });
    println!("{summary}");
    pool.close().await;
    Ok(())
}
