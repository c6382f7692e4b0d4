//! The notification service's adapters: MySQL, SES and its templates, the reading of events, and
//! webhook deliveries over HTTP.

pub mod consumer;
mod counts;
pub mod digests;
pub mod email_store;
pub mod envelope;
pub mod ingest;
pub mod live;
pub mod mysql;
mod outbound;
mod page_cache;
pub mod push_store;
pub mod reminders;
pub mod render;
pub mod ses;
pub mod sessions;
pub mod web_push;
pub mod webhook_enqueue;
pub mod webhook_http;
mod webhook_roles;
pub mod webhook_store;

pub use consumer::NotificationHandler;
pub use email_store::MySqlEmailStore;
pub use live::LiveWakeups;
pub use mysql::MySqlNotificationStore;
pub use ses::{SesMailer, SesSettings};
pub use sessions::IdentitySessions;
pub use webhook_http::WebhookHttp;
pub use webhook_roles::ProjectServiceRoles;
pub use webhook_store::MySqlWebhooks;
