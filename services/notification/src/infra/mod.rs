//! The notification service's adapters: MySQL, and the reading of events.

pub mod consumer;
pub mod envelope;
pub mod live;
pub mod mysql;
pub mod sessions;

pub use consumer::NotificationHandler;
pub use live::LiveWakeups;
pub use mysql::MySqlNotificationStore;
pub use sessions::IdentitySessions;
