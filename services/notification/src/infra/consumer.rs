//! The consumer's handler: each event is read, then ingested inside the consumer's transaction, so
//! its notifications are stored exactly when the event counts as processed (a redelivered event is
//! dropped by the consumer's receipt before it reaches here).

use async_trait::async_trait;
use ordo_events::{EventHandler, HandlerError, OutboxSignal};
use ordo_proto::events::v1::Envelope;
use sqlx::MySqlConnection;
use time::OffsetDateTime;

use super::envelope::delivery;
use super::mysql::MySqlIngest;
use crate::app::{AppError, ingest};

/// Turns events into notifications.
#[derive(Debug, Clone)]
pub struct NotificationHandler {
    signal: OutboxSignal,
}

impl NotificationHandler {
    /// A handler that wakes the relay through `signal` once its notifications (and their
    /// `notification.created` wake-up) have committed.
    pub fn new(signal: OutboxSignal) -> Self {
        Self { signal }
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

#[async_trait]
impl EventHandler for NotificationHandler {
    async fn handle(&self, conn: &mut MySqlConnection, envelope: &Envelope) -> Result<(), HandlerError> {
        let delivery = delivery(envelope)?;
        let mut tx = MySqlIngest::new(conn);
        let stored = ingest(&mut tx, &delivery, OffsetDateTime::now_utc()).await.map_err(handler_error)?;
        if !stored.is_empty() {
            tracing::debug!(event_id = %delivery.event_id, notifications = stored.len(), "notified");
        }
        Ok(())
    }

    fn committed(&self, _envelope: &Envelope) {
        // Whether or not this event stored anything: one spare poll of the relay is cheaper than
        // remembering which did.
        self.signal.notify();
    }
}
