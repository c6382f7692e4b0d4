//! Translates identity's domain events into `ordo.events.v1.Envelope`s.

use ordo_events::EnvelopeBuilder;
use ordo_proto::events::v1::{self as pb, envelope::Payload};
use uuid::Uuid;

use crate::app::ClientInfo;
use crate::domain::IdentityEvent;

/// The producer name carried in every envelope.
const PRODUCER: &str = "identity";

/// Builds the envelope of `event`, caused by `actor` from `client`, in the current trace.
pub(crate) fn envelope(event: &IdentityEvent, actor: Option<Uuid>, client: &ClientInfo) -> pb::Envelope {
    let (entity_type, entity_id) = event.entity();
    let mut envelope = EnvelopeBuilder::new(PRODUCER, event.event_type())
        .client(client.ip.as_str(), client.user_agent.as_str())
        .entity(entity_type, entity_id.map(|id| id.to_string()).unwrap_or_default())
        .payload(payload(event));
    if let Some(actor) = actor {
        envelope = envelope.actor(actor.to_string());
    }
    envelope.build()
}

fn payload(event: &IdentityEvent) -> Payload {
    match event {
        IdentityEvent::UserRegistered { user } => Payload::UserRegistered(pb::UserRegistered {
            user_id: user.id.to_string(),
            email: user.email.as_str().to_owned(),
            display_name: user.display_name.as_str().to_owned(),
            role: user.role.as_str().to_owned(),
        }),
        IdentityEvent::LoginSucceeded { user_id, session_id } => Payload::LoginSucceeded(pb::LoginSucceeded {
            user_id: user_id.to_string(),
            session_id: session_id.to_string(),
        }),
        IdentityEvent::LoginFailed { email, user_id, reason } => Payload::LoginFailed(pb::LoginFailed {
            email: email.as_str().to_owned(),
            user_id: user_id.map(|id| id.to_string()).unwrap_or_default(),
            reason: (*reason).to_owned(),
        }),
        IdentityEvent::SessionRevoked { user_id, session_id, reason } => Payload::SessionRevoked(pb::SessionRevoked {
            user_id: user_id.to_string(),
            session_id: session_id.to_string(),
            reason: reason.as_str().to_owned(),
        }),
        IdentityEvent::RefreshReuseDetected { user_id, session_id } => {
            Payload::RefreshReuseDetected(pb::RefreshReuseDetected {
                user_id: user_id.to_string(),
                session_id: session_id.to_string(),
            })
        }
        IdentityEvent::PasswordChanged { user_id } => {
            Payload::PasswordChanged(pb::PasswordChanged { user_id: user_id.to_string() })
        }
        IdentityEvent::UserRoleChanged { user_id, old_role, new_role } => {
            Payload::UserRoleChanged(pb::UserRoleChanged {
                user_id: user_id.to_string(),
                old_role: old_role.as_str().to_owned(),
                new_role: new_role.as_str().to_owned(),
            })
        }
        IdentityEvent::UserDisabled { user_id, disabled } => {
            Payload::UserDisabled(pb::UserDisabled { user_id: user_id.to_string(), disabled: *disabled })
        }
    }
}
