//! The crate's errors: [`Error`] for the outbox, relay and consumer plumbing, and [`HandlerError`]
//! for what an [`EventHandler`](crate::EventHandler) reports back, which decides whether a message
//! is retried or dead-lettered at once.

use std::time::Duration;

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while writing, publishing or consuming events.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// MariaDB refused a statement or the connection was lost.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// RabbitMQ refused an operation or the connection to it was lost.
    #[error("message broker error: {0}")]
    Broker(#[from] lapin::Error),

    /// The broker negatively acknowledged a published message; the batch stays unpublished and is
    /// retried.
    #[error("the broker nacked event {event_id}")]
    Nacked {
        /// The event the broker refused.
        event_id: String,
    },

    /// The broker did not confirm a batch in time; the batch stays unpublished and is retried.
    #[error("the broker did not confirm the batch within {0:?}")]
    ConfirmTimeout(Duration),

    /// The broker did not answer in time (a connection it took and never answered, a publish it did
    /// not read); the connection is dropped and the round retried.
    #[error("the broker did not answer {what} within {timeout:?}")]
    BrokerTimeout {
        /// What the relay was doing.
        what: &'static str,
        /// How long it waited.
        timeout: Duration,
    },

    /// The broker ended the consumer, e.g. because its queue was deleted; the consumer reconnects
    /// and declares the queue again.
    #[error("the broker cancelled the consumer of queue {queue}")]
    ConsumerCancelled {
        /// The queue that was being consumed.
        queue: String,
    },

    /// An envelope that cannot be enqueued, e.g. without a canonical UUID `event_id` or a `type`.
    #[error("invalid envelope: {0}")]
    InvalidEnvelope(String),

    /// A relay or consumer configuration that cannot work, e.g. a zero batch size.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// A service migration uses a version number that this crate's migrations already use.
    #[error("migration version {0} exists both in ordo-events and in the service")]
    MigrationVersionClash(i64),
}

impl Error {
    /// Whether the error says the broker connection is unusable, so that it must be reopened.
    pub(crate) fn is_broker_failure(&self) -> bool {
        matches!(
            self,
            Error::Broker(_) | Error::ConfirmTimeout(_) | Error::BrokerTimeout { .. } | Error::ConsumerCancelled { .. }
        )
    }
}

/// Why an [`EventHandler`](crate::EventHandler) could not apply an event. In every case the
/// consumer's transaction is rolled back, so a failed attempt leaves no trace in the database.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event may apply later (a dependency is down, a row is not there yet): the message is
    /// requeued, which counts as one delivery attempt; after the last attempt it is dead-lettered.
    #[error("retryable: {0}")]
    Retryable(String),

    /// The event can never apply (it contradicts the consumer's invariants): the message goes to the
    /// dead-letter queue at once instead of burning the remaining attempts.
    #[error("permanent: {0}")]
    Permanent(String),

    /// A statement of the handler failed. Connection-level failures (the database is unreachable)
    /// are retried without counting an attempt; any other database error counts as one.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl HandlerError {
    /// A [`HandlerError::Retryable`] from anything printable.
    pub fn retryable(reason: impl std::fmt::Display) -> Self {
        Self::Retryable(reason.to_string())
    }

    /// A [`HandlerError::Permanent`] from anything printable.
    pub fn permanent(reason: impl std::fmt::Display) -> Self {
        Self::Permanent(reason.to_string())
    }
}
