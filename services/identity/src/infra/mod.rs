//! Adapters behind identity's ports: MySQL (sqlx) for accounts, sessions and the outbox, Redis for the
//! session cache and login throttle, argon2id for passwords, and the signing key store with the
//! key-encryption key that seals it.

mod envelope;
mod hasher;
pub mod key_encryption;
mod mysql;
mod redis;
pub mod signing_key;

pub use hasher::{Argon2Hasher, VERIFICATIONS_METRIC};
pub use mysql::MySqlIdentityStore;
pub use redis::{RedisLoginThrottle, RedisSessionCache, RedisUserCache};
