//! Queues each project event for every active endpoint of its project that wants it, inside the
//! consumer's transaction: a delivery is queued exactly when the event counts as processed, so an
//! event is never lost between the broker and the queue nor queued twice. The body is the JSON an
//! endpoint receives: `{id, type, timestamp, project_id, actor_id, data}`, `data` the event's payload
//! with the API's field names.

use std::collections::HashMap;

use ordo_events::json::PayloadJson;
use ordo_proto::events::v1::Envelope;
use ordo_service::db_error;
use sqlx::{MySql, MySqlConnection, QueryBuilder};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::mysql::push_ids;
use crate::app::{AppError, Result};
use crate::domain::webhook::EventTypes;

/// Rows per multi-row insert (10 columns each).
const CHUNK: usize = 1000;

/// `at` as RFC 3339 (UTC, as the API writes times).
pub(super) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// Whether an event of `event_type` goes to webhooks: the project's own events and its tasks'.
fn is_project_event(event_type: &str) -> bool {
    (event_type.starts_with("task.") || event_type.starts_with("project.")) && event_type != "project.deleted"
}

/// One event, read for its endpoints.
struct Event<'a> {
    envelope: &'a Envelope,
    project_id: Uuid,
}

/// Queues `envelopes` (those of a project) for the active endpoints that want them; the number of
/// deliveries queued. A project's deletion deletes its endpoints instead.
///
/// # Errors
///
/// What the database answers; a payload this build cannot read is sent with empty `data`.
pub async fn enqueue(
    conn: &mut MySqlConnection,
    payloads: &PayloadJson,
    envelopes: &[&Envelope],
    now: OffsetDateTime,
) -> Result<usize> {
    let mut gone = Vec::new();
    let mut events = Vec::new();
    for envelope in envelopes {
        let Ok(project_id) = Uuid::parse_str(&envelope.project_id) else { continue };
        if envelope.r#type == "project.deleted" {
            gone.push(project_id);
        } else if is_project_event(&envelope.r#type) {
            events.push(Event { envelope, project_id });
        }
    }
    if !gone.is_empty() {
        forget_projects(conn, &gone).await?;
    }
    if events.is_empty() {
        return Ok(0);
    }
    let mut projects: Vec<Uuid> = events.iter().map(|e| e.project_id).collect();
    projects.sort_unstable();
    projects.dedup();
    let mut sql = QueryBuilder::<MySql>::new(
        "SELECT id, project_id, event_types FROM webhook_endpoint WHERE active AND project_id IN (",
    );
    push_ids(&mut sql, &projects);
    let rows: Vec<(Uuid, Uuid, String)> = sql.build_query_as().fetch_all(&mut *conn).await.map_err(db_error)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut endpoints: HashMap<Uuid, Vec<(Uuid, EventTypes)>> = HashMap::new();
    for (id, project_id, types) in rows {
        let types: Vec<String> = types.split(' ').map(str::to_owned).collect();
        // Stored only after the same check; one that fails it now is skipped rather than guessed at.
        if let Ok(types) = EventTypes::parse(&types) {
            endpoints.entry(project_id).or_default().push((id, types));
        }
    }
    let mut deliveries = Vec::new();
    for event in &events {
        let Some(wanting) = endpoints.get(&event.project_id) else { continue };
        let wanted: Vec<Uuid> =
            wanting.iter().filter(|(_, types)| types.matches(&event.envelope.r#type)).map(|(id, _)| *id).collect();
        if wanted.is_empty() {
            continue;
        }
        let Ok(message_id) = Uuid::parse_str(&event.envelope.event_id) else { continue };
        let (body, order_key) = body(payloads, event)?;
        for endpoint_id in wanted {
            deliveries.push((
                Uuid::now_v7(),
                endpoint_id,
                message_id,
                event.envelope.r#type.as_str(),
                order_key,
                body.clone(),
            ));
        }
    }
    for chunk in deliveries.chunks(CHUNK) {
        let mut sql = QueryBuilder::<MySql>::new(
            "INSERT INTO webhook_delivery (id, endpoint_id, message_id, event_type, order_key, body, state, attempts,
                                           next_attempt_at, created_at) ",
        );
        sql.push_values(chunk, |mut row, (id, endpoint_id, message_id, event_type, order_key, body)| {
            row.push_bind(*id)
                .push_bind(*endpoint_id)
                .push_bind(*message_id)
                .push_bind(*event_type)
                .push_bind(*order_key)
                .push_bind(body.as_str())
                .push("'pending'")
                .push("0")
                .push_bind(ordo_platform::db::utc_datetime(now))
                .push_bind(ordo_platform::db::utc_datetime(now));
        });
        sql.build().execute(&mut *conn).await.map_err(db_error)?;
    }
    Ok(deliveries.len())
}

/// The JSON body of `event` and the key its endpoint orders it by: its task, or its project.
fn body(payloads: &PayloadJson, event: &Event<'_>) -> Result<(String, Uuid)> {
    let envelope = event.envelope;
    let data = match payloads.payload(envelope) {
        Ok(Some((_, data))) => data,
        Ok(None) => serde_json::Value::Object(serde_json::Map::new()),
        Err(error) => {
            tracing::warn!(%error, event_id = %envelope.event_id, "an event's payload does not read; sent without data");
            serde_json::Value::Object(serde_json::Map::new())
        }
    };
    let task_id = data
        .get("task")
        .and_then(|task| task.get("task_id"))
        .and_then(serde_json::Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok());
    let timestamp =
        envelope.occurred_at.as_ref().and_then(ordo_proto::time::offset_date_time).map(rfc3339).unwrap_or_default();
    let actor = (!envelope.actor_id.is_empty()).then_some(envelope.actor_id.as_str());
    let body = serde_json::json!({
        "id": envelope.event_id,
        "type": envelope.r#type,
        "timestamp": timestamp,
        "project_id": envelope.project_id,
        "actor_id": actor,
        "data": data,
    });
    let text = serde_json::to_string(&body).map_err(|e| AppError::internal(anyhow::anyhow!("webhook body: {e}")))?;
    Ok((text, task_id.unwrap_or(event.project_id)))
}

/// Deletes the endpoints of deleted projects, with their queues and logs.
async fn forget_projects(conn: &mut MySqlConnection, projects: &[Uuid]) -> Result<()> {
    for statement in [
        "DELETE a FROM webhook_attempt a JOIN webhook_endpoint e ON e.id = a.endpoint_id WHERE e.project_id IN (",
        "DELETE d FROM webhook_delivery d JOIN webhook_endpoint e ON e.id = d.endpoint_id WHERE e.project_id IN (",
        "DELETE FROM webhook_endpoint WHERE project_id IN (",
        "DELETE FROM webhook_project WHERE project_id IN (",
    ] {
        let mut sql = QueryBuilder::<MySql>::new(statement);
        push_ids(&mut sql, projects);
        sql.build().execute(&mut *conn).await.map_err(db_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_and_task_events_go_to_webhooks() {
        assert!(is_project_event("task.created"));
        assert!(is_project_event("task.comment_added"));
        assert!(is_project_event("project.member_added"));
        assert!(!is_project_event("project.deleted"));
        assert!(!is_project_event("identity.user_registered"));
        assert!(!is_project_event("notification.created"));
    }
}
