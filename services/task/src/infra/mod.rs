//! Adapters behind the task service's ports: MySQL (sqlx) for tasks, comments and the outbox, gRPC
//! to the project service for access, and the consumer of the project service's events.

pub mod consumer;
mod envelope;
mod mysql;
pub mod project;

pub use consumer::ProjectEventHandler;
pub use mysql::MySqlTaskStore;
pub use project::ProjectServiceAccess;
