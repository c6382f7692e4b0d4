//! A service's server: the gRPC server (health, optional reflection, authentication, tracing and
//! metrics) beside the ops HTTP port, and the background tasks (relay, consumers, refreshers) that
//! stop with it. On shutdown the gRPC server lets in-flight RPCs finish, then every background task
//! is waited for (the relay publishes what it holds, a consumer finishes its message), then the
//! database pool closes.

use std::convert::Infallible;
use std::future::Future;

use anyhow::Context as _;
use ordo_auth::AuthenticateLayer;
use ordo_events::{Consumer, OutboxSignal, Relay};
use ordo_platform::ops::Readiness;
use ordo_platform::shutdown::CancellationToken;
use sqlx::MySqlPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;

use crate::backends::Backends;
use crate::config::ServiceArgs;

/// How often the database pool's use and checkout wait are sampled into the metrics.
const POOL_SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The two ports a service listens on: gRPC, and the ops HTTP port (`/healthz`, `/readyz`, `/metrics`).
#[derive(Debug)]
pub struct Listeners {
    /// The gRPC API.
    pub grpc: TcpListener,
    /// `/healthz`, `/readyz` and `/metrics`.
    pub ops: TcpListener,
}

/// A route of one gRPC method, type-erased.
type MethodRoute = tower::util::BoxCloneSyncService<http::Request<axum::body::Body>, http::Response<Body>, Infallible>;

/// A service being assembled: its gRPC services and background tasks, served by [`Server::serve`].
#[derive(Debug)]
pub struct Server {
    name: &'static str,
    reflection: bool,
    shutdown: CancellationToken,
    routes: RoutesBuilder,
    served: Vec<&'static str>,
    /// Methods answered by a route of their own, in front of their service.
    methods: Vec<(&'static str, MethodRoute)>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// A server for service `name` (as it appears in logs), stopping when `shutdown` is cancelled.
    pub fn new(name: &'static str, args: &ServiceArgs, shutdown: CancellationToken) -> Self {
        Self {
            name,
            reflection: args.grpc_reflection,
            shutdown,
            routes: RoutesBuilder::default(),
            served: Vec::new(),
            methods: Vec::new(),
            tasks: Vec::new(),
        }
    }

    /// How every service starts: installs the metrics recorder (before anything records, or the
    /// first measurements are lost), connects the database (migrated with `migrator`) and Redis, and
    /// returns them with the server of service `name`.
    ///
    /// # Errors
    ///
    /// When the database or Redis cannot be reached or the migrations fail.
    pub async fn start(
        name: &'static str,
        args: &ServiceArgs,
        migrator: &Migrator,
        shutdown: CancellationToken,
    ) -> anyhow::Result<(Self, Backends)> {
        ordo_platform::ops::metrics_handle();
        let backends = Backends::start(args, migrator).await?;
        Ok((Self::new(name, args, shutdown), backends))
    }

    /// The token that stops the service.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Runs a background task, given the shutdown token, until it returns; the server waits for it
    /// after the gRPC server has drained.
    pub fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(tokio::spawn(task(self.shutdown.clone())));
    }

    /// Publishes the outbox on `pool` as configured by `args`, woken by `signal` after each commit;
    /// on shutdown the relay publishes what it holds first.
    ///
    /// # Errors
    ///
    /// When the relay's configuration is invalid (see [`Relay::new`]).
    pub fn spawn_relay(&mut self, args: &ServiceArgs, pool: &MySqlPool, signal: OutboxSignal) -> anyhow::Result<()> {
        let relay = Relay::new(pool.clone(), args.relay_config(), signal).context("outbox relay")?;
        self.spawn(|shutdown| relay.run(shutdown));
        Ok(())
    }

    /// Runs `consumer` until shutdown (it finishes its message first). Its queue and bindings are
    /// declared before the service answers, so no event published from then on can miss the queue;
    /// when the broker is down the consumer declares them itself once it connects.
    pub async fn spawn_consumer(&mut self, consumer: Consumer) {
        if let Err(error) = consumer.declare_topology().await {
            tracing::warn!(%error, "could not declare the event queue yet; the consumer will when it connects");
        }
        self.spawn(|shutdown| consumer.run(shutdown));
    }

    /// Serves a gRPC service, and reports it serving through the health service.
    pub fn add_service<S>(&mut self, service: S) -> &mut Self
    where
        S: tower::Service<http::Request<Body>, Error = Infallible> + NamedService + Clone + Send + Sync + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.served.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Answers the gRPC method at `path` (`/package.Service/Method`) with `route` instead of the
    /// service that declares it: for a method whose answer the generated code cannot express, such
    /// as bytes already encoded. The exact path wins over the service's prefix.
    pub fn add_method_route<R>(&mut self, path: &'static str, route: R) -> &mut Self
    where
        R: tower::Service<http::Request<axum::body::Body>, Response = http::Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        R::Future: Send + 'static,
    {
        self.methods.push((path, MethodRoute::new(route)));
        self
    }

    /// Serves gRPC on `listeners.grpc` (every RPC through `authenticate`) and the ops routes on
    /// `listeners.ops` until shutdown, then drains as the module says and closes `pool`.
    ///
    /// # Errors
    ///
    /// When a listener fails or reflection cannot be built.
    pub async fn serve(
        mut self,
        listeners: Listeners,
        readiness: Readiness,
        authenticate: AuthenticateLayer,
        pool: MySqlPool,
    ) -> anyhow::Result<()> {
        let Listeners { grpc, ops } = listeners;
        let (health, health_service) = tonic_health::server::health_reporter();
        for name in &self.served {
            health.set_service_status(name, tonic_health::ServingStatus::Serving).await;
        }
        self.routes.add_service(health_service);
        if self.reflection {
            self.routes.add_service(
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(ordo_proto::FILE_DESCRIPTOR_SET)
                    .build_v1()?,
            );
        }
        let shutdown = self.shutdown.clone();
        let sampled = pool.clone();
        self.spawn(|shutdown| ordo_platform::db::watch_pool(sampled, POOL_SAMPLE_INTERVAL, shutdown));
        self.spawn(|shutdown| async move {
            if let Err(error) = ordo_platform::ops::serve(ops, readiness, shutdown).await {
                tracing::error!(%error, "the ops server failed");
            }
        });

        let mut router = std::mem::take(&mut self.routes).routes().into_axum_router();
        for (path, route) in std::mem::take(&mut self.methods) {
            router = router.route_service(path, route);
        }
        let routes = tonic::service::Routes::from(router);

        tracing::info!(grpc = %grpc.local_addr()?, "{} serving", self.name);
        let served = tonic::transport::Server::builder()
            .trace_fn(ordo_platform::grpc::request_span)
            .layer(ordo_platform::grpc::MetricsLayer)
            .layer(authenticate)
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(grpc),
                shutdown.clone().cancelled_owned(),
            )
            .await
            .context("gRPC server");
        // A server that failed must not leave the background tasks running.
        shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        pool.close().await;
        served?;
        tracing::info!("{} stopped", self.name);
        Ok(())
    }
}
