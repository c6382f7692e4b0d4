//! The wake-ups of live streams across instances: the consumer that stores notifications writes a
//! `notification.created` event naming their users into its outbox (in the same transaction, so none
//! is lost), the relay publishes it, and every instance's broadcast subscription wakes the streams it
//! holds for those users.

use std::sync::Arc;

use ordo_events::{EnvelopeBuilder, Listener};
use ordo_proto::events::v1::envelope::Payload;
use ordo_proto::events::v1::{Envelope, NotificationsCreated};
use uuid::Uuid;

use crate::app::LiveHub;

/// The routing key of the wake-up, and the binding of every instance's subscription.
pub const CREATED: &str = "notification.created";

/// The producer named in the wake-up.
const PRODUCER: &str = "notification";

/// The wake-up for the streams of `users`.
pub fn created(users: &[Uuid]) -> Envelope {
    let payload = NotificationsCreated { user_ids: users.iter().map(Uuid::to_string).collect() };
    EnvelopeBuilder::new(PRODUCER, CREATED).payload(Payload::NotificationsCreated(payload)).build()
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
