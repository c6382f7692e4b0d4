//! Building the [`Envelope`] every event travels in: a fresh UUID v7 `event_id`, the time, the
//! producer and the trace context of the request that caused the event are filled in here, so
//! producers only say what happened and to what.

use ordo_proto::events::v1::Envelope;
use ordo_proto::events::v1::envelope::Payload;
use time::OffsetDateTime;

use uuid::Uuid;

use crate::HandlerError;
use crate::trace_context;

/// Builds an [`Envelope`]; [`EnvelopeBuilder::build`] stamps the id, the time and the trace context.
#[derive(Debug, Clone)]
pub struct EnvelopeBuilder {
    envelope: Envelope,
}

impl EnvelopeBuilder {
    /// Starts an envelope from `producer` (the service, e.g. `identity`) of type `event_type` (the
    /// routing key, `<context>.<event>`, e.g. `identity.user_registered`).
    pub fn new(producer: &str, event_type: &str) -> Self {
        Self {
            envelope: Envelope { producer: producer.to_owned(), r#type: event_type.to_owned(), ..Envelope::default() },
        }
    }

    /// The user who caused the event; leave unset for the system.
    #[must_use]
    pub fn actor(mut self, actor_id: impl Into<String>) -> Self {
        self.envelope.actor_id = actor_id.into();
        self
    }

    /// Where the request came from, as the gateway saw it.
    #[must_use]
    pub fn client(mut self, ip: impl Into<String>, user_agent: impl Into<String>) -> Self {
        self.envelope.ip = ip.into();
        self.envelope.user_agent = user_agent.into();
        self
    }

    /// The aggregate the event is about, e.g. `("user", user_id)`.
    #[must_use]
    pub fn entity(mut self, entity_type: impl Into<String>, entity_id: impl Into<String>) -> Self {
        self.envelope.entity_type = entity_type.into();
        self.envelope.entity_id = entity_id.into();
        self
    }

    /// The project the event belongs to.
    #[must_use]
    pub fn project(mut self, project_id: impl Into<String>) -> Self {
        self.envelope.project_id = project_id.into();
        self
    }

    /// The event's own message.
    #[must_use]
    pub fn payload(mut self, payload: Payload) -> Self {
        self.envelope.payload = Some(payload);
        self
    }

    /// Finishes the envelope: a new UUID v7 `event_id`, `occurred_at` = now, and the W3C
    /// `traceparent`/`tracestate` of the current tracing span (empty when there is none), so call it
    /// inside the request's span.
    pub fn build(self) -> Envelope {
        let (traceparent, tracestate) = trace_context::current();
        Envelope {
            // v7 ids sort by creation time, which keeps the unique index on event_id append-mostly.
            event_id: uuid::Uuid::now_v7().to_string(),
            occurred_at: Some(ordo_proto::time::timestamp(OffsetDateTime::now_utc())),
            traceparent,
            tracestate,
            ..self.envelope
        }
    }
}

/// Shorthand for `EnvelopeBuilder::new(producer, event_type).payload(payload).build()`.
pub fn new_envelope(producer: &str, event_type: &str, payload: Payload) -> Envelope {
    EnvelopeBuilder::new(producer, event_type).payload(payload).build()
}

/// When the event of `envelope` happened, to the microsecond (as the database keeps it), for a
/// consumer; an envelope without a valid time can never apply.
///
/// # Errors
///
/// [`HandlerError::Permanent`] when `occurred_at` is missing or out of range.
pub fn occurred_at(envelope: &Envelope) -> Result<OffsetDateTime, HandlerError> {
    let at = envelope.occurred_at.as_ref().ok_or_else(|| HandlerError::permanent("no occurred_at"))?;
    ordo_proto::time::offset_date_time(at)
        .and_then(|t| t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000).ok())
        .ok_or_else(|| HandlerError::permanent("occurred_at out of range"))
}

/// A UUID field of an event (`field` names it in the error), for a consumer.
///
/// # Errors
///
/// [`HandlerError::Permanent`] when `value` is not a UUID.
pub fn uuid_field(field: &str, value: &str) -> Result<Uuid, HandlerError> {
    Uuid::parse_str(value).map_err(|_| HandlerError::Permanent(format!("{field} {value:?} is not a UUID")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use ordo_proto::events::v1::PasswordChanged;

    use super::*;

    #[test]
    fn build_fills_a_v7_event_id_the_time_and_every_given_field() {
        let payload = Payload::PasswordChanged(PasswordChanged { user_id: "u1".into() });

        let envelope = EnvelopeBuilder::new("identity", "identity.password_changed")
            .actor("u1")
            .client("203.0.113.7", "curl/8")
            .entity("user", "u1")
            .project("p1")
            .payload(payload.clone())
            .build();

        let event_id = uuid::Uuid::parse_str(&envelope.event_id).unwrap();
        assert_eq!(event_id.get_version_num(), 7);
        assert!(envelope.occurred_at.unwrap().seconds > 1_700_000_000);
        assert_eq!(envelope.producer, "identity");
        assert_eq!(envelope.r#type, "identity.password_changed");
        assert_eq!(envelope.actor_id, "u1");
        assert_eq!(envelope.ip, "203.0.113.7");
        assert_eq!(envelope.user_agent, "curl/8");
        assert_eq!((envelope.entity_type.as_str(), envelope.entity_id.as_str()), ("user", "u1"));
        assert_eq!(envelope.project_id, "p1");
        assert_eq!(envelope.payload, Some(payload));
    }

    #[test]
    fn two_envelopes_never_share_an_event_id() {
        let payload = Payload::PasswordChanged(PasswordChanged::default());

        let first = new_envelope("identity", "identity.password_changed", payload.clone());
        let second = new_envelope("identity", "identity.password_changed", payload);

        assert_ne!(first.event_id, second.event_id);
    }
}
