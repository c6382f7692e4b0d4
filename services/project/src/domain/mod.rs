//! The project service's domain: projects, roles, the rules of who may do what, and the events that
//! changes cause. Plain Rust: no I/O here, so every rule is tested without a database.

mod event;
mod policy;
mod project;

pub use event::{MemberRemoval, ProjectEvent};
pub use policy::{Access, Denied};
pub use project::{Description, FieldViolation, Membership, Project, ProjectKey, ProjectName, ProjectRole, Violations};
