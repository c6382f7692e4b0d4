//! The consumer's handler: each event is read, then ingested inside the consumer's transaction, so
//! its notifications are stored exactly when the event counts as processed (a redelivered event is
//! dropped by the consumer's receipt before it reaches here).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use ordo_events::json::PayloadJson;
use ordo_events::{BatchEventHandler, EventHandler, HandlerError, OutboxSignal};
use ordo_proto::events::v1::Envelope;
use sqlx::MySqlConnection;
use time::OffsetDateTime;

use super::envelope::delivery;
use super::ingest::MySqlIngest;
use super::webhook_enqueue::enqueue;
use crate::app::{AppError, Dispatcher, IngestSettings, ingest};

/// Notifications stored, by outcome (`created`), counted once their transaction commits.
pub const NOTIFICATIONS_TOTAL: &str = "ordo_notifications_total";

/// Turns events into notifications, and queues them for the project's webhooks.
#[derive(Debug, Clone)]
pub struct NotificationHandler {
    signal: OutboxSignal,
    settings: IngestSettings,
    webhooks: Option<Webhooks>,
    /// How many notifications the batch being applied stored: counted in the metrics only when it
    /// commits, so a batch rolled back and applied again is not counted twice. The consumer applies
    /// one batch at a time.
    uncommitted: Arc<AtomicU64>,
}

/// What queues events for webhooks.
#[derive(Debug, Clone)]
struct Webhooks {
    payloads: PayloadJson,
    dispatcher: Dispatcher,
}

impl NotificationHandler {
    /// A handler that ingests with `settings` and wakes the relay through `signal` once its
    /// notifications (and their `notification.created` wake-up) have committed.
    pub fn new(signal: OutboxSignal, settings: IngestSettings) -> Self {
        metrics::describe_counter!(NOTIFICATIONS_TOTAL, "In-app notifications stored, by outcome (created).");
        metrics::counter!(NOTIFICATIONS_TOTAL, "outcome" => "created").increment(0);
        Self { signal, settings, webhooks: None, uncommitted: Arc::default() }
    }

    /// The handler also queues each project event for the project's webhooks that want it,
    /// reading payloads with `payloads`, and wakes `dispatcher` once they have committed.
    #[must_use]
    pub fn with_webhooks(mut self, payloads: PayloadJson, dispatcher: Dispatcher) -> Self {
        self.webhooks = Some(Webhooks { payloads, dispatcher });
        self
    }
}

/// An error of the use case, as the consumer weighs it: what may pass (the database, a lost lock
/// race) is retried; anything else can never apply.
fn handler_error(error: AppError) -> HandlerError {
    match error {
        AppError::Unavailable(_) | AppError::Contention | AppError::Internal(_) => HandlerError::retryable(error),
        other => HandlerError::permanent(other),
    }
}

/// The service runs the batched consumer; a single event is a batch of one.
#[async_trait]
impl EventHandler for NotificationHandler {
    async fn handle(&self, conn: &mut MySqlConnection, envelope: &Envelope) -> Result<(), HandlerError> {
        self.handle_batch(conn, &[envelope]).await
    }

    fn committed(&self, envelope: &Envelope) {
        BatchEventHandler::committed(self, &[envelope]);
    }
}

/// A batch of events in one transaction, in delivery order: one commit and one statement per step
/// for many events. Each statement locks its rows in key order, so two instances' batches mostly
/// wait on each other rather than deadlock; when the database still answers with a deadlock, the
/// consumer applies those events one at a time.
#[async_trait]
impl BatchEventHandler for NotificationHandler {
    async fn handle_batch(&self, conn: &mut MySqlConnection, envelopes: &[&Envelope]) -> Result<(), HandlerError> {
        let now = OffsetDateTime::now_utc();
        let deliveries = envelopes.iter().map(|envelope| delivery(envelope)).collect::<Result<Vec<_>, _>>()?;
        let mut tx = MySqlIngest::new(conn);
        let stored = ingest(&mut tx, &deliveries, now, self.settings).await.map_err(handler_error)?.len();
        self.uncommitted.store(stored as u64, Ordering::Relaxed);
        if stored > 0 {
            tracing::debug!(events = envelopes.len(), notifications = stored, "notified");
        }
        if let Some(webhooks) = &self.webhooks {
            let queued = enqueue(conn, &webhooks.payloads, envelopes, now).await.map_err(handler_error)?;
            if queued > 0 {
                tracing::debug!(events = envelopes.len(), deliveries = queued, "queued for webhooks");
            }
        }
        Ok(())
    }

    fn committed(&self, _envelopes: &[&Envelope]) {
        let created = self.uncommitted.swap(0, Ordering::Relaxed);
        if created > 0 {
            metrics::counter!(NOTIFICATIONS_TOTAL, "outcome" => "created").increment(created);
            // The batch wrote its streams' wake-up to the outbox only when it stored something;
            // a batch that stored nothing leaves the relay asleep (a relay round is six statements).
            self.signal.notify();
        }
        if let Some(webhooks) = &self.webhooks {
            webhooks.dispatcher.wake();
        }
    }
}
