//! Adapters behind the project service's ports: MySQL (sqlx) for projects, memberships and the
//! outbox, Redis for the access cache, gRPC to identity for accounts and token keys, and the
//! consumer of identity's events.

pub mod consumer;
mod envelope;
pub mod identity;
mod mysql;
mod redis;

pub use consumer::IdentityEventHandler;
pub use identity::IdentityDirectory;
pub use mysql::MySqlProjectStore;
pub use redis::RedisAccessCache;
