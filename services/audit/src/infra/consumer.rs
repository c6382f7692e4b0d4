//! Every event on the exchange becomes one record: the consumer runtime drops redeliveries by
//! `event_id`, and the record is appended in the same transaction as that dedup row.

use async_trait::async_trait;
use ordo_events::json::PayloadJson;
use ordo_events::{BatchEventHandler, EventHandler, HandlerError};
use ordo_proto::events::v1::Envelope;
use sqlx::MySqlConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::Entry;

/// Every event of the identity, project and task contexts, and the end of every background job (who
/// exported or imported what).
pub const BINDINGS: &[&str] = &["identity.#", "project.#", "task.#", "job.ended"];

/// Whether the log records an event of type `event_type`: every event of the contexts it is bound
/// to, never the notification service's own wake-ups (`notification.created`), which a queue bound
/// to `#` by an earlier version still receives.
fn is_recorded(event_type: &str) -> bool {
    !event_type.starts_with("notification.")
}

/// Appends each event to the log.
#[derive(Clone, Debug)]
pub struct AuditHandler {
    payloads: PayloadJson,
}

impl AuditHandler {
    /// A handler that reads payloads with the descriptors of Ordo's protos.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self { payloads: PayloadJson::new()? })
    }

    /// The event's payload as JSON with the protobuf field names (`snake_case`, as the API names
    /// everything): the payload's field name, then its fields; `{}` when the envelope carries none
    /// this build knows. Served exactly as stored, because the hash chain covers the stored text:
    /// records appended before this rule keep the lowerCamelCase names they were written with.
    fn data(&self, envelope: &Envelope) -> Result<String, HandlerError> {
        let mut data = serde_json::Map::new();
        if let Some((field, json)) = self.payloads.payload(envelope).map_err(HandlerError::permanent)? {
            data.insert(field, json);
        }
        serde_json::to_string(&data).map_err(|e| HandlerError::Permanent(format!("payload to JSON: {e}")))
    }
}

fn occurred_at(envelope: &Envelope) -> Result<OffsetDateTime, HandlerError> {
    let at = envelope.occurred_at.as_ref().ok_or_else(|| HandlerError::Permanent("no occurred_at".to_owned()))?;
    ordo_proto::time::offset_date_time(at).ok_or_else(|| HandlerError::Permanent("occurred_at out of range".to_owned()))
}

impl AuditHandler {
    /// What the log records of `envelope`.
    fn entry(&self, envelope: &Envelope) -> Result<Entry, HandlerError> {
        let id = Uuid::parse_str(&envelope.event_id)
            .map_err(|_| HandlerError::Permanent(format!("event_id {:?} is not a UUID", envelope.event_id)))?;
        Ok(Entry::new(
            id,
            occurred_at(envelope)?,
            &envelope.r#type,
            &envelope.actor_id,
            &envelope.producer,
            &envelope.entity_type,
            &envelope.entity_id,
            &envelope.project_id,
            &envelope.ip,
            &envelope.user_agent,
            self.data(envelope)?,
        ))
    }
}

/// The service runs the batched consumer; a single event is a batch of one.
#[async_trait]
impl EventHandler for AuditHandler {
    async fn handle(&self, conn: &mut MySqlConnection, envelope: &Envelope) -> Result<(), HandlerError> {
        self.handle_batch(conn, &[envelope]).await
    }
}

/// A whole batch goes into the chain under one lock of its head, in one transaction.
#[async_trait]
impl BatchEventHandler for AuditHandler {
    async fn handle_batch(&self, conn: &mut MySqlConnection, envelopes: &[&Envelope]) -> Result<(), HandlerError> {
        let entries = envelopes
            .iter()
            .filter(|envelope| is_recorded(&envelope.r#type))
            .map(|envelope| self.entry(envelope))
            .collect::<Result<Vec<_>, _>>()?;
        let records = super::mysql::append_batch(conn, entries).await?;
        metrics::counter!("ordo_audit_records_appended_total").increment(records.len() as u64);
        if let (Some(first), Some(last)) = (records.first(), records.last()) {
            tracing::debug!(from = first.seq, to = last.seq, "recorded");
        }
        Ok(())
    }
}
