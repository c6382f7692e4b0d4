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
use ordo_service::{CancellationToken, IdentityAuth, Listeners, Server, UpstreamArgs};

use crate::app::ProjectService;
use crate::app::ports::AccessCache;
use crate::infra::{IdentityDirectory, IdentityEventHandler, MySqlProjectStore, RedisAccessCache};

ordo_service::config! {
    /// Every setting of the project service, from flags or `ORDO_*` environment variables.
    #[service(name = "project", grpc_port = 50052, ops_port = 9102, queue = "project.events", serve = serve)]
    pub struct Config {
        /// How long a cached access record lives, seconds (changes invalidate it at once anyway).
        #[arg(long, env = "ORDO_ACCESS_CACHE_TTL_SECS", default_value_t = 600)]
        pub access_cache_ttl_secs: u64,
        /// Identity and the timeout of calls to other services.
        #[command(flatten)]
        pub upstream: UpstreamArgs,
    }
}

/// Runs the service on the given listeners until `shutdown` is cancelled, then drains: in-flight
/// RPCs finish, the relay publishes what it holds, the consumer finishes its message.
pub async fn serve(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (mut server, backends) = Server::start("project", &config.service, &MIGRATOR, shutdown).await?;
    let identity = IdentityAuth::start(&config.upstream, &mut server).await?;

    let signal = OutboxSignal::default();
    let cache: Arc<dyn AccessCache> = Arc::new(RedisAccessCache::new(
        backends.redis.clone(),
        config.service.redis.prefix.clone(),
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

    server.add_service(ProjectServiceServer::new(grpc::ProjectGrpc::new(service)));
    identity.serve(server, listeners, &config.service, backends).await
}
