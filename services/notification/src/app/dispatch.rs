//! Sends queued webhook deliveries. Each instance looks for endpoints with deliveries due (at once
//! when its consumer queued some, else every poll) and takes a lease on each before sending to it,
//! so one instance at a time sends to an endpoint: its throttle holds across instances, and a
//! task's events go out in order. Every endpoint has its own worker, so a slow receiver holds up
//! only its own deliveries; a worker sends a few deliveries of different tasks at once, paced by
//! the endpoint's rate limit, and gives the lease up after a short idle spell.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt as _;
use ordo_service::CancellationToken;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::webhook_ports::{AttemptResult, DeliveryQueue, EndpointRoute, Outgoing, WebhookSend};
use crate::domain::webhook::{Answer, ORDER_HOLD_ATTEMPTS, Outcome, Verdict, disable_reason, verdict};

/// How the senders of one instance work.
#[derive(Debug, Clone, Copy)]
pub struct DispatchSettings {
    /// How often endpoints with deliveries due are looked for when nothing wakes the instance.
    pub poll: Duration,
    /// How long a lease on an endpoint lasts unless renewed (a third of it before it ends).
    pub lease: Duration,
    /// How long a worker waits for more deliveries before it gives its endpoint's lease up.
    pub idle: Duration,
    /// The most endpoints this instance sends to at once.
    pub max_endpoints: usize,
    /// The most deliveries in flight to one endpoint.
    pub per_endpoint: usize,
    /// Deliveries fetched per round of a worker.
    pub batch: u32,
    /// What the waits between attempts are multiplied by: 1 in production; tests shorten them.
    pub retry_scale: f64,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(500),
            lease: Duration::from_secs(30),
            idle: Duration::from_secs(2),
            max_endpoints: 256,
            per_endpoint: 8,
            batch: 32,
            retry_scale: 1.0,
        }
    }
}

/// Endpoints looked at per poll.
const DUE_ENDPOINTS: u32 = 512;

/// The senders of one instance.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Arc<dyn DeliveryQueue>,
    sender: Arc<dyn WebhookSend>,
    settings: DispatchSettings,
    /// This instance, as lease holder.
    holder: Uuid,
    /// Endpoints this instance has a worker for.
    running: Mutex<HashSet<Uuid>>,
    /// Woken when deliveries were queued here.
    wake: Notify,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("holder", &self.inner.holder).finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Senders over `queue` that send with `sender`.
    pub fn new(queue: Arc<dyn DeliveryQueue>, sender: Arc<dyn WebhookSend>, settings: DispatchSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                queue,
                sender,
                settings,
                holder: Uuid::now_v7(),
                running: Mutex::new(HashSet::new()),
                wake: Notify::new(),
            }),
        }
    }

    /// Deliveries were queued: look now rather than at the next poll.
    pub fn wake(&self) {
        self.inner.wake.notify_waiters();
        self.inner.wake.notify_one();
    }

    /// Sends until `shutdown`; then the workers finish the attempts they are making and give their
    /// leases up.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut workers = JoinSet::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(self.inner.settings.poll) => {}
            }
            while workers.try_join_next().is_some() {}
            if let Err(error) = self.start_workers(&mut workers, &shutdown).await {
                tracing::warn!(%error, "looking for webhook deliveries failed; retrying");
            }
        }
        while workers.join_next().await.is_some() {}
    }

    async fn start_workers(&self, workers: &mut JoinSet<()>, shutdown: &CancellationToken) -> super::Result<()> {
        let now = OffsetDateTime::now_utc();
        for endpoint in self.inner.queue.due_endpoints(now, DUE_ENDPOINTS).await? {
            {
                let running = self.inner.running.lock().unwrap_or_else(PoisonError::into_inner);
                if running.contains(&endpoint) || running.len() >= self.inner.settings.max_endpoints {
                    continue;
                }
            }
            let until = now + self.inner.settings.lease;
            if !self.inner.queue.lease(endpoint, self.inner.holder, now, until).await? {
                continue;
            }
            self.inner.running.lock().unwrap_or_else(PoisonError::into_inner).insert(endpoint);
            let (me, shutdown) = (self.clone(), shutdown.clone());
            workers.spawn(async move {
                me.work(endpoint, &shutdown).await;
                let _ = me.inner.queue.release(endpoint, me.inner.holder).await;
                me.inner.running.lock().unwrap_or_else(PoisonError::into_inner).remove(&endpoint);
            });
        }
        Ok(())
    }

    /// Sends `endpoint_id`'s due deliveries while this instance holds its lease, until none came
    /// for the idle spell, the endpoint is off, or shutdown.
    async fn work(&self, endpoint_id: Uuid, shutdown: &CancellationToken) {
        let settings = self.inner.settings;
        let mut renewed = tokio::time::Instant::now();
        let mut idle_since: Option<tokio::time::Instant> = None;
        while !shutdown.is_cancelled() {
            let now = OffsetDateTime::now_utc();
            if renewed.elapsed() >= settings.lease / 3 {
                match self.inner.queue.lease(endpoint_id, self.inner.holder, now, now + settings.lease).await {
                    Ok(true) => renewed = tokio::time::Instant::now(),
                    Ok(false) => return,
                    Err(error) => {
                        tracing::warn!(%error, %endpoint_id, "renewing a webhook lease failed");
                        return;
                    }
                }
            }
            let round = async {
                let Some(route) = self.inner.queue.route(endpoint_id).await? else { return Ok(None) };
                if !route.active {
                    return Ok(None);
                }
                let due = self.inner.queue.due(endpoint_id, now, settings.batch, ORDER_HOLD_ATTEMPTS).await?;
                Ok::<_, super::AppError>(Some((route, due)))
            };
            let (route, due) = match round.await {
                Ok(Some(found)) => found,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, %endpoint_id, "reading webhook deliveries failed");
                    return;
                }
            };
            if due.is_empty() {
                let since = *idle_since.get_or_insert_with(tokio::time::Instant::now);
                let Some(left) = settings.idle.checked_sub(since.elapsed()).filter(|left| !left.is_zero()) else {
                    return;
                };
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = self.inner.wake.notified() => {}
                    () = tokio::time::sleep(left.min(settings.poll)) => {}
                }
                continue;
            }
            idle_since = None;
            if self.send_round(&route, due).await {
                // The endpoint was turned off.
                return;
            }
        }
    }

    /// Sends `due` to `route`, a few at once, paced by its rate limit; `true` when an attempt
    /// turned the endpoint off.
    async fn send_round(&self, route: &EndpointRoute, due: Vec<Outgoing>) -> bool {
        let spacing = (route.rate_limit > 0).then(|| Duration::from_secs(1) / route.rate_limit);
        let mut next_start = tokio::time::Instant::now();
        let results: Vec<bool> = futures::stream::iter(due)
            .then(|outgoing| {
                let start = next_start;
                if let Some(spacing) = spacing {
                    next_start = start.max(tokio::time::Instant::now()) + spacing;
                }
                async move {
                    tokio::time::sleep_until(start).await;
                    outgoing
                }
            })
            .map(|outgoing| self.send_one(route, outgoing))
            .buffer_unordered(self.inner.settings.per_endpoint.max(1))
            .collect()
            .await;
        results.into_iter().any(|disabled| disabled)
    }

    /// One attempt of `outgoing`, stored; `true` when it turned the endpoint off.
    async fn send_one(&self, route: &EndpointRoute, outgoing: Outgoing) -> bool {
        let attempted_at = OffsetDateTime::now_utc();
        let message_id = outgoing.message_id.to_string();
        let timestamp = attempted_at.unix_timestamp();
        let attempt = match route.signing.signature(&message_id, timestamp, &outgoing.body) {
            Ok(signature) => {
                let headers = [
                    ("webhook-id", message_id),
                    ("webhook-timestamp", timestamp.to_string()),
                    ("webhook-signature", signature),
                ];
                self.inner.sender.send(&route.target, &headers, outgoing.body.clone()).await
            }
            Err(error) => crate::domain::webhook::Attempt {
                answer: Answer::Unreachable,
                latency: Duration::ZERO,
                excerpt: error.to_string(),
            },
        };
        let number = outgoing.attempts.saturating_add(1);
        let jitter = rand::random::<f64>() * 2.0 - 1.0;
        let verdict = verdict(number, attempt.answer, jitter);
        let disable = disable_reason(verdict, route.failing_since, attempted_at);
        let next_attempt_at = match verdict {
            Verdict::Retry(wait) if disable.is_none() => {
                Some(OffsetDateTime::now_utc() + wait.mul_f64(self.inner.settings.retry_scale))
            }
            _ => None,
        };
        let result = AttemptResult {
            attempt_id: Uuid::now_v7(),
            delivery_id: outgoing.id,
            endpoint_id: route.id,
            attempt: number,
            attempted_at,
            outcome: Outcome::of(attempt.answer),
            status_code: match attempt.answer {
                Answer::Status { code, .. } => Some(code),
                Answer::Timeout | Answer::Unreachable => None,
            },
            latency: attempt.latency,
            excerpt: attempt.excerpt,
            next_attempt_at,
            delivered: verdict == Verdict::Delivered,
            disable,
        };
        metrics::counter!("ordo_webhook_attempts_total", "outcome" => result.outcome.as_str()).increment(1);
        metrics::histogram!("ordo_webhook_attempt_seconds").record(attempt.latency.as_secs_f64());
        if let Some(reason) = disable {
            tracing::warn!(endpoint_id = %route.id, reason = reason.as_str(), "webhook endpoint turned off");
        }
        if let Err(error) = self.inner.queue.record(&result).await {
            // The delivery stays due and is tried again: at least once.
            tracing::warn!(%error, delivery_id = %outgoing.id, "storing a webhook attempt failed");
        }
        disable.is_some()
    }
}
