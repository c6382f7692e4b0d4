//! The project service's use cases. They depend on the ports in [`ports`] only; `infra` implements
//! them with MySQL, Redis and the identity service. Authorization decisions are made here, through
//! the domain's [`Access`](crate::domain::Access) rules.

mod cursor;
mod error;
pub mod ports;
mod service;

pub use error::{AppError, Result};
pub(crate) use error::{already_member, denied, key_taken};
pub use service::{AccessAnswer, ClientInfo, MemberPage, MemberView, ProjectPage, ProjectService, ProjectUpdate};
