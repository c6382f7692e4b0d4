//! Identity's use cases. They depend on the ports in [`ports`] only; `infra` implements them with
//! MySQL, Redis and argon2. Authorization decisions are made here.

mod error;
pub mod ports;
mod service;
mod signing;

pub use error::{AppError, Result};
pub(crate) use error::{email_taken, locked_out, no_such_user, user_changed};
pub use service::{
    ClientInfo, IdentityService, IdentitySettings, ListUsersPage, TokenPair, UserUpdate, UserView, describe_metrics,
};
pub use signing::{RotationOutcome, SigningKeys};
