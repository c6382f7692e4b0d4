//! The skeleton every Ordo service stands on, so a service holds only its own domain, use cases,
//! adapters and a `main` of a few lines:
//!
//! - [`ServiceArgs`] (and [`UpstreamArgs`] for a service that calls others): the flags every
//!   service's `Config` flattens, each service giving its own defaults for addresses and schema;
//! - [`Service`] and [`run`]: a service's configuration, migrations and `serve`, and the whole
//!   `main` of its binary (parse, runtime, telemetry, then migrate or serve until a signal);
//! - [`Backends`]: the database (migrated) and Redis a service starts with, and its session checks;
//! - [`IdentityAuth`]: identity's keys, waited for at start and refreshed in the background;
//! - [`Server`]: the gRPC server with health, optional reflection, authentication, tracing and
//!   metrics, beside the ops HTTP port, drained on shutdown together with the service's background
//!   tasks;
//! - [`projects`]: the project service's answer about a user in a project, for services that check
//!   access against it;
//! - [`status`] and [`db_error`]: the one mapping of the error vocabulary ([`ordo_error`]) to gRPC,
//!   and of database errors to it.
//!
//! How a service uses it is shown in the README's "Adding a service".

/// Every service allocates with mimalloc rather than glibc's malloc, which took about a tenth of
/// the CPU of a request in profiles: many small buffers (protobuf, JSON, Redis replies) allocated on
/// one thread and freed on another. Set here once, so each service binary (and its tests) has it.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod backends;
mod config;
mod identity;
pub mod projects;
mod run;
mod server;
mod status;

pub use backends::Backends;
pub use config::{ServiceArgs, UpstreamArgs, default_to};
pub use identity::IdentityAuth;
pub use ordo_platform::shutdown::CancellationToken;
pub use run::{Command, ReplayArgs, Service, bind, main, migrate_or_serve, replay_dead_letters, run};
pub use server::{Listeners, Server};
pub use status::{db_error, status, unique_or};

/// What [`config!`] expands to names, so a service needs no direct dependency for it.
#[doc(hidden)]
pub mod __private {
    pub use anyhow;
    pub use sqlx::migrate::Migrator;
}
