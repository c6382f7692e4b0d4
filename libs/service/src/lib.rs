//! The skeleton every Ordo service stands on, so a service holds only its own domain, use cases,
//! adapters and a `main` of a few lines:
//!
//! - [`ServiceArgs`] (and [`UpstreamArgs`] for a service that calls others): the flags every
//!   service's `Config` flattens, each service giving its own defaults for addresses and schema;
//! - [`main`]: parses the configuration, builds the runtime, installs telemetry and runs the service;
//! - [`Backends`]: the database (migrated) and Redis a service starts with, and its session checks;
//! - [`IdentityAuth`]: identity's keys, waited for at start and refreshed in the background;
//! - [`Server`]: the gRPC server with health, optional reflection, authentication, tracing and
//!   metrics, beside the ops HTTP port, drained on shutdown together with the service's background
//!   tasks;
//! - [`status`] and [`db_error`]: the one mapping of the error vocabulary ([`ordo_error`]) to gRPC,
//!   and of database errors to it.
//!
//! How a service uses it is shown in the README's "Adding a service".

mod backends;
mod config;
mod identity;
mod run;
mod server;
mod status;

pub use backends::Backends;
pub use config::{ServiceArgs, UpstreamArgs, default_to};
pub use identity::IdentityAuth;
pub use ordo_platform::shutdown::CancellationToken;
pub use run::{HasServiceArgs, bind, main};
pub use server::Server;
pub use status::{db_error, status};
