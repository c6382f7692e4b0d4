//! The wake-ups of live streams across instances: the consumer that stores notifications writes a
//! `notification.created` event naming their users into its outbox (in the same transaction, so none
//! is lost), and so does every change of a user's counts (`notification.changed`); the relay
//! publishes them, and every instance's broadcast subscription wakes the streams it holds for those
//! users, which look again.

use std::sync::Arc;

use ordo_events::{EnvelopeBuilder, Listener};
use ordo_proto::events::v1::envelope::Payload;
use ordo_proto::events::v1::{Envelope, NotificationsCreated};
use uuid::Uuid;

use crate::app::LiveHub;

/// The routing key of the wake-up after new notifications, bound by every instance's subscription.
pub const CREATED: &str = "notification.created";

/// The routing key of the wake-up after a change of counts (seen, read, archived, deleted), bound by
/// the same subscription; it carries the same payload.
pub const CHANGED: &str = "notification.changed";

/// The producer named in the wake-up.
const PRODUCER: &str = "notification";

/// The wake-up for the streams of `users` after new notifications.
pub fn created(users: &[Uuid]) -> Envelope {
    wake_up(CREATED, users)
}

/// The wake-up for the streams of `users` after their counts changed.
pub fn changed(users: &[Uuid]) -> Envelope {
    wake_up(CHANGED, users)
}

fn wake_up(routing_key: &str, users: &[Uuid]) -> Envelope {
    let payload = NotificationsCreated { user_ids: users.iter().map(Uuid::to_string).collect() };
    EnvelopeBuilder::new(PRODUCER, routing_key).payload(Payload::NotificationsCreated(payload)).build()
}

/// Wakes this instance's streams of the users each `notification.created` names.
#[derive(Debug, Clone)]
pub struct LiveWakeups {
    hub: Arc<LiveHub>,
}

impl LiveWakeups {
    /// Wakes the streams of `hub`.
    pub fn new(hub: Arc<LiveHub>) -> Self {
        Self { hub }
    }
}

impl Listener for LiveWakeups {
    fn on_event(&self, envelope: &Envelope) {
        let Some(Payload::NotificationsCreated(created)) = &envelope.payload else { return };
        // A malformed id names no stream; the others are still woken.
        let users: Vec<Uuid> = created.user_ids.iter().filter_map(|id| Uuid::parse_str(id).ok()).collect();
        self.hub.wake(&users);
    }

    fn on_connected(&self) {
        // Wake-ups published while disconnected were missed: every stream looks again.
        self.hub.wake_all();
    }
}
