//! The producer's side of the outbox: [`enqueue`] writes an event row in the caller's transaction,
//! so the event exists if and only if the change it describes commits, and [`OutboxSignal`] lets the
//! producer wake the relay right after that commit instead of waiting for its next poll.

use std::sync::Arc;

use ordo_proto::events::v1::Envelope;
use prost::Message as _;
use sqlx::{MySql, MySqlConnection, QueryBuilder};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{Error, Result};

/// The longest routing key the `outbox_event.routing_key` column holds (and AMQP's short-string
/// limit).
const MAX_ROUTING_KEY_LEN: usize = 255;

/// Writes `envelope` into the outbox inside the caller's open transaction; its routing key is the
/// envelope's `type`. Nothing is published until the transaction commits and the relay runs.
///
/// # Errors
///
/// [`Error::InvalidEnvelope`] when `event_id` is not a canonical (lower-case, hyphenated) UUID or
/// `type` is empty or too long; [`Error::Database`] when the insert fails, e.g. a duplicate
/// `event_id`.
#[tracing::instrument(
    name = "outbox enqueue",
    skip_all,
    fields(event_id = %envelope.event_id, event_type = %envelope.r#type),
    err
)]
pub async fn enqueue(conn: &mut MySqlConnection, envelope: &Envelope) -> Result<()> {
    let event_id = canonical_event_id(envelope)?;
    check_routing_key(envelope)?;

    sqlx::query!(
        "INSERT INTO outbox_event (event_id, routing_key, payload, created_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))",
        event_id,
        envelope.r#type,
        envelope.encode_to_vec(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes `envelopes` into the outbox, in their order, inside the caller's open transaction: like
/// [`enqueue`] for each, but in one statement per [`ENQUEUE_CHUNK`] rows, so a transaction that
/// announces many events pays one round trip for them rather than one each. Every envelope is
/// checked before anything is written.
///
/// # Errors
///
/// As [`enqueue`]; an invalid envelope anywhere writes none of them.
#[tracing::instrument(name = "outbox enqueue", skip_all, fields(events = envelopes.len()), err)]
pub async fn enqueue_all(conn: &mut MySqlConnection, envelopes: &[Envelope]) -> Result<()> {
    let mut rows = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
        let event_id = canonical_event_id(envelope)?;
        check_routing_key(envelope)?;
        rows.push((event_id, envelope.r#type.as_str(), envelope.encode_to_vec()));
    }
    for chunk in rows.chunks(ENQUEUE_CHUNK) {
        let mut sql =
            QueryBuilder::<MySql>::new("INSERT INTO outbox_event (event_id, routing_key, payload, created_at) ");
        sql.push_values(chunk, |mut row, (event_id, routing_key, payload)| {
            row.push_bind(*event_id).push_bind(*routing_key).push_bind(payload.as_slice()).push("UTC_TIMESTAMP(6)");
        });
        sql.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Rows per statement of [`enqueue_all`]: three placeholders each, well within MariaDB's 65,535.
pub const ENQUEUE_CHUNK: usize = 1000;

fn check_routing_key(envelope: &Envelope) -> Result<()> {
    if envelope.r#type.is_empty() || envelope.r#type.len() > MAX_ROUTING_KEY_LEN {
        return Err(Error::InvalidEnvelope(format!(
            "type must be 1 to {MAX_ROUTING_KEY_LEN} bytes, got {:?}",
            envelope.r#type
        )));
    }
    Ok(())
}

/// The envelope's `event_id`, which must be written the way [`Uuid`] prints it: consumers compare
/// the AMQP `message_id` and the envelope's field as strings, so both must spell it the same.
fn canonical_event_id(envelope: &Envelope) -> Result<Uuid> {
    match Uuid::parse_str(&envelope.event_id) {
        Ok(id) if id.hyphenated().to_string() == envelope.event_id => Ok(id),
        _ => Err(Error::InvalidEnvelope(format!(
            "event_id must be a lower-case hyphenated UUID, got {:?}",
            envelope.event_id
        ))),
    }
}

/// A producer's transaction with its outbox: changes and the events [`OutboxTx::enqueue`] writes
/// commit together, and [`OutboxTx::commit`] wakes the relay when any event was written. Statements
/// run on it as on the transaction (`&mut *tx` is the connection).
#[derive(Debug)]
pub struct OutboxTx {
    tx: sqlx::Transaction<'static, MySql>,
    signal: OutboxSignal,
    wrote_events: bool,
}

impl OutboxTx {
    /// Begins a transaction on `pool` whose commit wakes the relay through `signal`.
    ///
    /// # Errors
    ///
    /// When no connection can be had or `BEGIN` fails.
    pub async fn begin(pool: &sqlx::MySqlPool, signal: &OutboxSignal) -> sqlx::Result<Self> {
        Ok(Self { tx: pool.begin().await?, signal: signal.clone(), wrote_events: false })
    }

    /// Writes `envelope` into the outbox in this transaction (see [`enqueue`]).
    ///
    /// # Errors
    ///
    /// As [`enqueue`].
    pub async fn enqueue(&mut self, envelope: &Envelope) -> Result<()> {
        enqueue(&mut self.tx, envelope).await?;
        self.wrote_events = true;
        Ok(())
    }

    /// Commits, then wakes the relay if events were written. Dropping the transaction instead rolls
    /// it back, events included.
    ///
    /// # Errors
    ///
    /// When the commit fails (nothing was written then).
    pub async fn commit(self) -> sqlx::Result<()> {
        self.tx.commit().await?;
        if self.wrote_events {
            self.signal.notify();
        }
        Ok(())
    }
}

impl std::ops::Deref for OutboxTx {
    type Target = MySqlConnection;

    fn deref(&self) -> &MySqlConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for OutboxTx {
    fn deref_mut(&mut self) -> &mut MySqlConnection {
        &mut self.tx
    }
}

/// Wakes the relay as soon as a producer has committed outbox rows. Cheap to clone; share one
/// between the producers and the [`Relay`](crate::Relay) of a process.
#[derive(Clone, Debug, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    /// A new signal nobody waits on yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells the relay that rows are waiting; call it after the transaction has committed (before,
    /// the relay would not see the rows yet). A notification sent while the relay is busy is kept
    /// for its next wait, so none is lost.
    pub fn notify(&self) {
        self.0.notify_one();
    }

    /// Waits for the next [`notify`](Self::notify), or returns at once if one is pending.
    pub async fn notified(&self) {
        self.0.notified().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::*;

    #[test]
    fn canonical_event_id_rejects_an_upper_case_uuid() {
        let envelope = Envelope { event_id: Uuid::now_v7().to_string().to_uppercase(), ..Envelope::default() };

        let result = canonical_event_id(&envelope);

        assert!(matches!(result, Err(Error::InvalidEnvelope(_))));
    }

    #[tokio::test]
    async fn a_notification_sent_before_anyone_waits_is_not_lost() {
        let signal = OutboxSignal::new();

        signal.notify();

        tokio::time::timeout(Duration::from_secs(1), signal.notified()).await.unwrap();
    }
}
