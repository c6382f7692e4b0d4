//! Load generator of `just bench` for `CheckAccess`, the call every task, comment and attachment
//! request of the other services makes. It signs a user up with identity, creates a project, then
//! keeps `--concurrency` calls in flight over `--connections` HTTP/2 connections for `--duration`
//! seconds, and prints one JSON summary (requests, errors, req/s, latency percentiles in ms).
//!
//! ```text
//! cargo run --release -p ordo-project --example access_load -- \
//!     --identity-url http://127.0.0.1:50151 --project-url http://127.0.0.1:50152
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use ordo_proto::identity::v1 as idpb;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use ordo_proto::project::v1 as pb;
use ordo_proto::project::v1::project_service_client::ProjectServiceClient;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, Parser)]
struct Args {
    /// Identity's gRPC URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    identity_url: String,
    /// The project service's gRPC URL.
    #[arg(long, default_value = "http://127.0.0.1:50052")]
    project_url: String,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the calls share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds of measured load (after a warm-up of 3 s).
    #[arg(long, default_value_t = 15)]
    duration: u64,
}

fn authed<T>(token: &str, message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

/// Signs a fresh user up and logs in; returns the user id and access token.
async fn sign_up(identity_url: &str) -> anyhow::Result<(String, String)> {
    let mut identity = IdentityServiceClient::connect(identity_url.to_owned()).await.context("connect to identity")?;
    let email = format!("bench-{}@example.com", uuid::Uuid::now_v7());
    let password = "bench password 1234".to_owned();
    let user = identity
        .register(idpb::RegisterRequest {
            email: email.clone(),
            password: password.clone(),
            display_name: "Bench".into(),
            client: None,
        })
        .await?
        .into_inner()
        .user
        .context("no user")?;
    let tokens = identity
        .login(idpb::LoginRequest { email, password, client: None })
        .await?
        .into_inner()
        .tokens
        .context("no tokens")?;
    Ok((user.id, tokens.access_token))
}

/// Runs calls until `until`, recording each latency; returns (histogram, errors).
async fn drive(
    mut client: ProjectServiceClient<Channel>,
    token: String,
    project_id: String,
    user_id: String,
    until: Instant,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    while Instant::now() < until {
        let request =
            authed(&token, pb::CheckAccessRequest { project_id: project_id.clone(), user_id: user_id.clone() })?;
        let started = Instant::now();
        match client.check_access(request).await {
            Ok(response) if response.get_ref().role == pb::ProjectRole::Owner as i32 => {
                histogram.saturating_record(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
            Ok(_) | Err(_) => errors += 1,
        }
    }
    Ok((histogram, errors))
}

/// Keeps `concurrency` calls in flight until `seconds` pass.
async fn load(
    channels: &[Channel],
    args: &Args,
    token: &str,
    project_id: &str,
    user_id: &str,
    seconds: u64,
) -> anyhow::Result<(Histogram<u64>, u64, Duration)> {
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|i| {
            let client = ProjectServiceClient::new(channels[i % channels.len()].clone());
            tokio::spawn(drive(client, token.to_owned(), project_id.to_owned(), user_id.to_owned(), until))
        })
        .collect();
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    for task in tasks {
        let (histogram, task_errors) = task.await??;
        total.add(histogram)?;
        errors += task_errors;
    }
    Ok((total, errors, started.elapsed()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 || args.connections == 0 {
        bail!("--concurrency and --connections must be at least 1");
    }
    let (user_id, token) = sign_up(&args.identity_url).await?;
    let mut projects = ProjectServiceClient::connect(args.project_url.clone()).await.context("connect to project")?;
    let key = format!("B{}", &uuid::Uuid::now_v7().simple().to_string().to_uppercase()[20..29]);
    let project = projects
        .create_project(authed(
            &token,
            pb::CreateProjectRequest { name: "Bench".into(), key, description: None, client: None },
        )?)
        .await?
        .into_inner()
        .project
        .context("no project")?;
    // The creation locked the project's cache entries for a few seconds; the warm-up outlasts that.
    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        channels.push(Endpoint::from_shared(args.project_url.clone())?.tcp_nodelay(true).connect().await?);
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    load(&channels, &args, &token, &project.id, &user_id, 3).await?;
    let (histogram, errors, elapsed) = load(&channels, &args, &token, &project.id, &user_id, args.duration).await?;

    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let summary = serde_json::json!({
        "requests": histogram.len(),
        "errors": errors,
        "seconds": elapsed.as_secs_f64(),
        "rps": histogram.len() as f64 / elapsed.as_secs_f64(),
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "max_ms": histogram.max() as f64 / 1000.0,
        "concurrency": args.concurrency,
        "connections": args.connections,
    });
    println!("{summary}");
    Ok(())
}
