//! Ordo's project service: projects, memberships and roles, and the authority the other services
//! ask "may user U do X in project P" (`CheckAccess`, served from a Redis cache that every change
//! invalidates before it commits).
//!
//! `main.rs` parses [`Config`] and calls [`serve`]; tests call [`serve`] with listeners on port 0.

pub mod app;
pub mod domain;
pub mod grpc;
pub mod infra;

use std::sync::Arc;

use ordo_events::{Consumer, OutboxSignal};
use ordo_proto::project::v1::project_service_server::ProjectServiceServer;
pub use ordo_service::Command;
use ordo_service::{Backends, CancellationToken, IdentityAuth, Server, ServiceArgs, UpstreamArgs};
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;

use crate::app::ProjectService;
use crate::app::ports::AccessCache;
use crate::infra::{IdentityDirectory, IdentityEventHandler, MySqlProjectStore, RedisAccessCache};

/// The project service's own migrations (the events library's outbox tables are merged in at start).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Every setting of the project service, from flags or `ORDO_*` environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "ordo-project",
    version,
    about = "Ordo's project service",
    mut_arg("grpc_addr", ordo_service::default_to("127.0.0.1:50052")),
    mut_arg("ops_addr", ordo_service::default_to("127.0.0.1:9102")),
    mut_arg("database_url", ordo_service::default_to("mysql://root@127.0.0.1:3306/ordo_project"))
)]
pub struct Config {
    /// What to do; without a command the service runs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The flags every service shares.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Identity and the timeout of calls to other services.
    #[command(flatten)]
    pub upstream: UpstreamArgs,

    /// How long a cached access record lives, seconds (changes invalidate it at once anyway).
    #[arg(long, env = "ORDO_ACCESS_CACHE_TTL_SECS", default_value_t = 600)]
    pub access_cache_ttl_secs: u64,
    /// The durable queue this service consumes other contexts' events from.
    #[arg(long, env = "ORDO_EVENTS_QUEUE", default_value = "project.events")]
    pub events_queue: String,
}

ordo_service::service!(Config, name = "ordo-project", migrations = MIGRATOR, serve = serve);

/// Runs the service on the given listeners until `shutdown` is cancelled, then drains: in-flight
/// RPCs finish, the relay publishes what it holds, the consumer finishes its message.
pub async fn serve(
    config: Config,
    grpc_listener: TcpListener,
    ops_listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Install the metrics recorder before anything records: earlier measurements would be lost.
    ordo_platform::ops::metrics_handle();
    let backends = Backends::start(&config.service, &MIGRATOR).await?;
    let mut server = Server::new("project", &config.service, shutdown);
    let identity = IdentityAuth::start(&config.upstream, &mut server).await?;

    let signal = OutboxSignal::default();
    let cache: Arc<dyn AccessCache> = Arc::new(RedisAccessCache::new(
        backends.redis.clone(),
        config.service.redis_prefix.clone(),
        config.access_cache_ttl_secs,
    ));
    let service = ProjectService::new(
        Arc::new(MySqlProjectStore::new(backends.pool.clone(), signal.clone())),
        cache.clone(),
        Arc::new(IdentityDirectory::new(identity.client.clone())),
    );

    server.spawn_relay(&config.service, &backends.pool, signal)?;
    let consumer = Consumer::new(
        backends.pool.clone(),
        config.service.consumer_config(
            config.events_queue.clone(),
            "project",
            infra::consumer::BINDINGS.iter().copied(),
        ),
        IdentityEventHandler::new(cache),
    )?;
    server.spawn_consumer(consumer).await;

    let readiness = backends.readiness().with(identity.keys.clone());
    let authenticate = identity.layer(&config.service, &backends);
    server.add_service(ProjectServiceServer::new(grpc::ProjectGrpc::new(service)));
    server.serve(grpc_listener, ops_listener, readiness, authenticate, backends.pool).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::{CommandFactory as _, Parser as _};

    use super::Config;

    #[test]
    fn the_service_runs_on_a_developer_machine_without_a_flag() {
        Config::command().debug_assert();
        let config = Config::try_parse_from(["ordo-project"]).unwrap();
        assert_eq!(config.service.grpc_addr.to_string(), "127.0.0.1:50052");
        assert_eq!(config.service.ops_addr.to_string(), "127.0.0.1:9102");
        assert_eq!(config.service.database_url.expose(), "mysql://root@127.0.0.1:3306/ordo_project");
    }
}
