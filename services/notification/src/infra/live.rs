//! The wake-ups of live streams across instances: the consumer that stores notifications writes a
//! `notification.created` event naming their users into its outbox (in the same transaction, so none
//! is lost), and so does every change of a user's counts (`notification.changed`); the relay
//! publishes them, and every instance's broadcast subscription wakes the streams it holds for those
//! users, which look again. The same subscription carries the progress of background jobs
//! (`job.progressed`) to the streams of their requesters.

use std::sync::Arc;

use ordo_events::{EnvelopeBuilder, Listener};
use ordo_proto::events::v1::envelope::Payload;
use ordo_proto::events::v1::{Envelope, NotificationsCreated};
use uuid::Uuid;

use crate::app::{JobProgress, LiveHub};

/// The routing key of the wake-up after new notifications, bound by every instance's subscription.
pub const CREATED: &str = "notification.created";

/// The routing key of the wake-up after a change of counts (seen, read, archived, deleted), bound by
/// the same subscription; it carries the same payload.
pub const CHANGED: &str = "notification.changed";

/// The routing key of a background job's progress (the task service's), bound by the same
/// subscription: each instance tells the streams it holds of the job's requester.
pub const JOB_PROGRESSED: &str = "job.progressed";

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
        match &envelope.payload {
            Some(Payload::NotificationsCreated(created)) => {
                // A malformed id names no stream; the others are still woken.
                let users: Vec<Uuid> = created.user_ids.iter().filter_map(|id| Uuid::parse_str(id).ok()).collect();
                self.hub.wake(&users);
            }
            Some(Payload::JobProgressed(progressed)) => {
                let ids = (
                    Uuid::parse_str(&progressed.requester_id),
                    Uuid::parse_str(&progressed.job_id),
                    Uuid::parse_str(&progressed.project_id),
                );
                // A malformed one names no stream.
                if let (Ok(requester), Ok(job_id), Ok(project_id)) = ids {
                    let progress = JobProgress {
                        job_id,
                        project_id,
                        kind: progressed.kind.clone(),
                        rows_done: progressed.rows_done,
                        rows_total: progressed.rows_total,
                    };
                    self.hub.job_progress(requester, progress);
                }
            }
            _ => {}
        }
    }

    fn on_connected(&self) {
        // Wake-ups published while disconnected were missed: every stream looks again.
        self.hub.wake_all();
    }
}
