//! The outbox rows of the task service's changes: each event as an envelope, written in the
//! transaction of the change it describes, so the relay publishes exactly what was committed.

use sqlx::MySqlConnection;
use uuid::Uuid;

use super::db;
use crate::app::{AppError, ClientInfo, Result};
use crate::domain::TaskEvent;
use crate::infra::envelope::envelope;

/// Appends `event` to the outbox.
pub(crate) async fn record(
    conn: &mut MySqlConnection,
    event: &TaskEvent,
    actor: Option<String>,
    client: &ClientInfo,
) -> Result<()> {
    let envelope = envelope(event, actor, client);
    ordo_events::enqueue(conn, &envelope).await.map_err(outbox_error)
}

/// The envelope of `event`, caused by `actor`, for writing with [`enqueue_all`] later.
pub(super) fn envelope_of(
    event: &TaskEvent,
    actor: Option<Uuid>,
    client: &ClientInfo,
) -> ordo_proto::events::v1::Envelope {
    envelope(event, actor.map(|a| a.to_string()), client)
}

/// Appends `events` to the outbox, in order, in one statement.
pub(super) async fn enqueue_all(conn: &mut MySqlConnection, events: &[ordo_proto::events::v1::Envelope]) -> Result<()> {
    ordo_events::enqueue_all(conn, events).await.map_err(outbox_error)
}

fn outbox_error(error: ordo_events::Error) -> AppError {
    match error {
        ordo_events::Error::Database(e) => db(e),
        other => AppError::Internal(other.into()),
    }
}
