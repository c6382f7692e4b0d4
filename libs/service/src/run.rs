//! The start of every service binary: configuration, runtime, telemetry, listeners, and the choice
//! between migrating and serving.

use std::future::Future;

use anyhow::Context as _;
use ordo_platform::shutdown::CancellationToken;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;

use crate::backends::Backends;
use crate::config::ServiceArgs;

/// A service, as its binary runs it: its configuration (parsed from flags and `ORDO_*`
/// environment variables), its migrations and how it serves.
pub trait Service: clap::Parser + Send + 'static {
    /// The binary's name, as logs and traces name the service.
    const NAME: &'static str;

    /// The flags every service shares.
    fn service_args(&self) -> &ServiceArgs;

    /// The service's own migrations (the outbox's are merged in).
    fn migrator() -> &'static Migrator;

    /// Whether the command line asks to apply the migrations and exit instead of serving.
    fn migrate_only(&self) -> bool;

    /// Runs the service on `grpc` and `ops` until `shutdown` is cancelled, then drains.
    fn serve(
        self,
        grpc: TcpListener,
        ops: TcpListener,
        shutdown: CancellationToken,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Implements [`Service`] for a service's `Config` (a `clap::Parser`), which by convention holds the
/// shared flags in a field `service` and its subcommand in a field `command: Option<Command>`, where
/// `Command` (whichever is in scope: [`Command`] or the service's own) has a `Migrate` variant:
///
/// ```ignore
/// ordo_service::service!(Config, name = "ordo-project", migrations = MIGRATOR, serve = serve);
/// ```
///
/// `serve` is the service's `async fn serve(Config, grpc: TcpListener, ops: TcpListener,
/// shutdown: CancellationToken) -> anyhow::Result<()>`, which its tests call too.
#[macro_export]
macro_rules! service {
    ($config:ty, name = $name:literal, migrations = $migrator:expr, serve = $serve:path $(,)?) => {
        impl $crate::Service for $config {
            const NAME: &'static str = $name;

            fn service_args(&self) -> &$crate::ServiceArgs {
                &self.service
            }

            fn migrator() -> &'static $crate::__private::Migrator {
                &$migrator
            }

            fn migrate_only(&self) -> bool {
                matches!(self.command, Some(Command::Migrate))
            }

            fn serve(
                self,
                grpc: $crate::__private::TcpListener,
                ops: $crate::__private::TcpListener,
                shutdown: $crate::CancellationToken,
            ) -> impl ::std::future::Future<Output = $crate::__private::anyhow::Result<()>> + Send {
                $serve(self, grpc, ops, shutdown)
            }
        }
    };
}

/// The subcommands every service has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Create the schema if needed, apply migrations, and exit.
    Migrate,
}

/// The whole `main` of a service `S`: parse, start the runtime and telemetry, then migrate or serve
/// until SIGTERM or Ctrl-C.
pub fn run<S: Service>() -> anyhow::Result<()> {
    main(migrate_or_serve::<S>)
}

/// Applies the migrations when `config` asks for that, else binds the configured addresses and
/// serves until SIGTERM or Ctrl-C.
pub async fn migrate_or_serve<S: Service>(config: S) -> anyhow::Result<()> {
    if config.migrate_only() {
        Backends::migrate(config.service_args(), S::migrator()).await?.close().await;
        tracing::info!("migrations applied");
        return Ok(());
    }
    let (grpc, ops) = bind(config.service_args()).await?;
    config.serve(grpc, ops, ordo_platform::shutdown::on_signal()).await
}

/// Parses the configuration `S` from flags and environment, builds the runtime with the configured
/// number of workers, installs telemetry, and runs `body` on it (for a binary that does more than
/// [`run`]).
pub fn main<S, F, Fut, T>(body: F) -> anyhow::Result<T>
where
    S: Service,
    F: FnOnce(S) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let config = S::parse();
    // Built by hand rather than with `#[tokio::main]`: the number of workers is a setting.
    let runtime = config.service_args().runtime.build().context("start the runtime")?;
    runtime.block_on(async move {
        let _telemetry = ordo_platform::telemetry::init(S::NAME, config.service_args().telemetry.log_format)?;
        body(config).await
    })
}

/// Binds the gRPC and ops listeners at the configured addresses.
pub async fn bind(args: &ServiceArgs) -> anyhow::Result<(TcpListener, TcpListener)> {
    let grpc = TcpListener::bind(args.grpc_addr).await.with_context(|| format!("bind {}", args.grpc_addr))?;
    let ops = TcpListener::bind(args.ops_addr).await.with_context(|| format!("bind {}", args.ops_addr))?;
    Ok((grpc, ops))
}
