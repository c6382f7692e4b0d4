//! Identity's domain: accounts and their rules, sessions, and the events they cause. Plain Rust: no
//! I/O here, so every rule is tested without a database.

mod event;
mod user;

pub use event::{IdentityEvent, RevokeReason};
pub use user::{DisplayName, Email, FieldViolation, PlainPassword, Role, User, Violations};
