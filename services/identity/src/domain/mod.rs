//! Identity's domain: accounts and their rules, sessions, the events they cause, and the schedule of
//! the keys that sign access tokens. Plain Rust: no I/O here, so every rule is tested without a
//! database.

mod event;
mod signing_key;
mod user;

pub use event::{IdentityEvent, RevokeReason};
pub use signing_key::{KeySchedule, KeyState, Rotation, ScheduledKey};
pub use user::{DisplayName, Email, FieldViolation, PlainPassword, Role, User, Violations};
