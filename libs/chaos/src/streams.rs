//! Live notification streams of the assignee, held open through every fault: each reconnects when
//! its stream ends or breaks, with `Last-Event-ID`, as a browser's `EventSource` does, and counts what
//! it receives. A notification that arrives twice on one client is a duplicate the API promises not
//! to send.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;
use tokio::sync::Mutex;

use crate::load;

/// What one stream client saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct StreamStats {
    pub(crate) received: usize,
    pub(crate) duplicates: usize,
    pub(crate) connections: usize,
    pub(crate) last_received: Option<Instant>,
}

/// Runs one client until `stop` is set; its counts are in `stats`.
pub(crate) async fn run(
    gateway: String,
    email: String,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<StreamStats>>,
) -> anyhow::Result<()> {
    // No overall timeout: a stream lasts; a silent one is noticed by its missing heartbeats (15 s).
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .read_timeout(Duration::from_secs(40))
        .build()?;
    let login_client = load::client()?;
    let mut token: Option<String> = None;
    let mut last_id: Option<String> = None;
    let mut seen = HashSet::new();
    let mut logged_in_at = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Tokens last 15 minutes; a soak outlives them.
        if token.is_none() || logged_in_at.elapsed() > Duration::from_secs(600) {
            match load::login(&login_client, &gateway, &email).await {
                Ok(fresh) => {
                    token = Some(fresh);
                    logged_in_at = Instant::now();
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
        }
        let Some(bearer) = &token else { continue };
        let mut request = client.get(format!("{gateway}/api/v1/notifications/stream")).bearer_auth(bearer);
        if let Some(id) = &last_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = match request.send().await {
            Ok(response) if response.status() == 200 => response,
            Ok(response) if response.status() == 401 => {
                token = None;
                continue;
            }
            _ => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        stats.lock().await.connections += 1;
        let mut events = response.bytes_stream().eventsource();
        loop {
            let next = tokio::select! {
                next = events.next() => next,
                () = tokio::time::sleep(Duration::from_millis(500)) => {
                    if stop.load(Ordering::Relaxed) { break } else { continue }
                }
            };
            let Some(Ok(event)) = next else { break };
            // Counts events carry no id of their own (the parser repeats the last one): only
            // notifications count.
            if event.event != "notification" || event.id.is_empty() {
                continue;
            }
            let mut stats = stats.lock().await;
            stats.received += 1;
            stats.last_received = Some(Instant::now());
            if !seen.insert(event.id.clone()) {
                stats.duplicates += 1;
            }
            last_id = Some(event.id);
        }
    }
    Ok(())
}

/// One line about every stream client.
pub(crate) async fn summary(stats: &[Arc<Mutex<StreamStats>>]) -> String {
    let mut received = Vec::new();
    let (mut connections, mut duplicates) = (0, 0);
    for stats in stats {
        let stats = stats.lock().await;
        received.push(stats.received);
        connections += stats.connections;
        duplicates += stats.duplicates;
    }
    format!(
        "live streams: {} clients received {received:?} notifications over {connections} connections, {duplicates} twice",
        stats.len()
    )
}
