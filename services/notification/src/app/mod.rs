//! The notification service's use cases: [`ingest`] turns an event into notifications (and queued
//! mails) inside the consumer's transaction; [`compose_digests`] queues the daily digests that are
//! due; [`EmailSender`] sends the mails whose window closed (and the digests);
//! [`NotificationService`] answers a user's requests about their own. All depend on the ports in
//! [`ports`] only; `infra` implements them with MySQL and SES.

mod cursor;
mod digest;
mod dispatch;
mod email;
mod ingest;
mod live;
pub mod ports;
pub mod push;
mod service;
mod stream;
pub mod webhook_ports;
mod webhooks;

pub use digest::compose_digests;
pub use dispatch::{DispatchSettings, Dispatcher};
pub use email::{EmailSender, SendPolicy};
pub use ingest::{Delivery, Fact, IngestSettings, fire_reminders, ingest, webhook_disabled};
pub use live::{JobProgress, LiveHub, Wake, Wakeups};
pub use ordo_error::{Error as AppError, Result};
pub use service::{
    DeliveryChange, MAX_PREFERENCE_ENTRIES, NotificationPage, NotificationService, Preferences, PreferencesUpdate,
};
pub use stream::StreamItem;
pub use webhooks::{Manager, NewWebhook, Page, WebhookService, WebhookUpdate};
