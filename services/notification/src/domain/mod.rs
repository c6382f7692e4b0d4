//! The notification service's domain: the kinds of notification, the rules that decide who hears
//! about an event (and never its actor), the `@mentions` of a comment, and how each notification
//! reads, by email too. Plain Rust: no I/O.

pub mod digest;
pub mod email;
mod event;
mod kind;
mod mention;
pub mod reminder;
mod rules;
pub mod webhook;

pub use event::{Event, JobRef, Member, ProjectRef, TaskRef};
pub use kind::{Channel, Kind, UnknownKind};
pub use mention::mentioned;
pub use rules::{Draft, MAX_BODY_CHARS, MAX_TITLE_CHARS, drafts};
