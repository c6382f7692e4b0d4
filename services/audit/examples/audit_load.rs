//! Load generator of `just bench` for the audit log. Publishes `--events` envelopes to the exchange
//! (with publisher confirms) while a running audit service consumes them, measures how fast the log
//! grows until every one is recorded, then times `verify` over the whole chain. Prints one JSON
//! summary.
//!
//! ```text
//! cargo run --release -p ordo-audit --example audit_load -- \
//!     --database-url mysql://root@127.0.0.1:3306/ordo_bench_audit --exchange ordo.bench.events
//! ```

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use ordo_proto::events::v1 as pb;
use ordo_proto::events::v1::envelope::Payload;
use ordo_testkit::Outgoing;
use prost::Message as _;

#[derive(Debug, Parser)]
struct Args {
    /// The audit service's schema (read to see the log grow, and verified).
    #[arg(long)]
    database_url: String,
    /// RabbitMQ URL.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// The exchange the audit service consumes from.
    #[arg(long, default_value = "ordo.events")]
    exchange: String,
    /// Events to publish.
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// How many times to verify the chain (the best run is reported).
    #[arg(long, default_value_t = 3)]
    verify_runs: u32,
}

fn event(n: u64, actor: &str, project: &str) -> pb::Envelope {
    let payload = Payload::ProjectUpdated(pb::ProjectUpdated {
        project_id: project.to_owned(),
        key: "BENCH".into(),
        name: format!("Bench {n}"),
        description: "A project whose name changes a lot".into(),
        changed_fields: vec!["name".into()],
        version: i64::try_from(n).unwrap_or(i64::MAX),
    });
    ordo_events::EnvelopeBuilder::new("project", "project.updated")
        .actor(actor)
        .client("203.0.113.7", "audit-load/1.0")
        .entity("project", project)
        .project(project)
        .payload(payload)
        .build()
}

async fn head(pool: &sqlx::MySqlPool) -> anyhow::Result<u64> {
    Ok(sqlx::query_scalar("SELECT seq FROM audit_head WHERE slot = 1").fetch_one(pool).await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pool = ordo_platform::db::connect(&args.database_url, 2).await.context("connect to the audit schema")?;
    let start_seq = head(&pool).await?;
    let actor = uuid::Uuid::now_v7().to_string();
    let project = uuid::Uuid::now_v7().to_string();

    let started = Instant::now();
    let messages = (0..args.events).map(|n| {
        let envelope = event(n, &actor, &project);
        Outgoing {
            routing_key: envelope.r#type.clone(),
            message_id: envelope.event_id.clone(),
            body: envelope.encode_to_vec(),
        }
    });
    ordo_testkit::publish_all(&args.amqp_url, &args.exchange, messages).await?;
    let published = started.elapsed();
    let target = start_seq + args.events;
    let deadline = Instant::now() + Duration::from_secs(600);
    while head(&pool).await? < target {
        anyhow::ensure!(Instant::now() < deadline, "the log did not reach {target} records in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let appended = started.elapsed();

    let mut best = Duration::MAX;
    let mut checked = 0;
    for _ in 0..args.verify_runs.max(1) {
        let at = Instant::now();
        let verdict = ordo_audit::infra::mysql::verify(&pool, ordo_audit::infra::mysql::Part::WHOLE)
            .await?
            .context("the chain starts past its head")?;
        anyhow::ensure!(verdict.ok(), "the chain does not verify: {verdict:?}");
        best = best.min(at.elapsed());
        checked = verdict.checked;
    }

    let summary = serde_json::json!({
        "events": args.events,
        "publish_seconds": published.as_secs_f64(),
        "append_seconds": appended.as_secs_f64(),
        "appended_per_second": args.events as f64 / appended.as_secs_f64(),
        "verified_records": checked,
        "verify_seconds": best.as_secs_f64(),
        "verified_per_second": checked as f64 / best.as_secs_f64(),
    });
    println!("{summary}");
    pool.close().await;
    Ok(())
}
