//! The notification service's adapters: MySQL, and the reading of events.

pub mod consumer;
pub mod envelope;
pub mod mysql;

pub use consumer::NotificationHandler;
pub use mysql::MySqlNotificationStore;
