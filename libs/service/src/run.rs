//! The start of every service binary: configuration, runtime, telemetry, listeners, and the choice
//! between migrating and serving.

use std::future::Future;

use anyhow::Context as _;
use ordo_platform::shutdown::CancellationToken;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;

use crate::backends::Backends;
use crate::config::ServiceArgs;
use crate::server::Listeners;

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
    /// How many dead letters the command line asks to replay (`replay-dead-letters`), if it does.
    fn replay_limit(&self) -> Option<u64> {
        None
    }
    /// The queue the service consumes events from, if it consumes any.
    fn events_queue(&self) -> Option<&str> {
        None
    }

    /// Runs the service on `listeners` until `shutdown` is cancelled, then drains.
    fn serve(
        self,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Declares a service's `Config` and its migrations, and implements [`Service`] for it.
///
/// ```ignore
/// ordo_service::config! {
///     /// Every setting of the project service, from flags or `ORDO_*` environment variables.
///     #[service(name = "project", grpc_port = 50052, ops_port = 9102, queue = "project.events", serve = serve)]
///     pub struct Config {
///         /// How long a cached access record lives, seconds.
///         #[arg(long, env = "ORDO_ACCESS_CACHE_TTL_SECS", default_value_t = 600)]
///         pub access_cache_ttl_secs: u64,
///     }
/// }
/// ```
///
/// declares
/// - `MIGRATOR`, the migrations in the crate's `migrations/` folder (the outbox's are merged in at
///   start);
/// - `Config`, a `clap::Parser` named `ordo-<name>` holding its subcommand (`command`), the flags
///   every service shares (`service`), whose defaults are `127.0.0.1:<grpc_port>`,
///   `127.0.0.1:<ops_port>` and the schema `ordo_<name>` on the local MySQL, with `queue` the durable
///   queue the service consumes events from (`events_queue`, `ORDO_EVENTS_QUEUE`), and then the
///   fields written in the body.
///
/// `serve` is the service's `async fn serve(Config, Listeners, CancellationToken) ->
/// anyhow::Result<()>`, which its tests call too. A service with
/// subcommands of its own adds `command = crate::Command` (an enum with a `Migrate` variant) after
/// `serve`; `#[command(..)]` attributes after `#[service(..)]` adjust the shared flags (say
/// `mut_arg("database_max_connections", ordo_service::default_to("16"))`).
#[macro_export]
macro_rules! config {
    (
        $(#[doc = $doc:literal])*
        #[service(
            name = $name:literal, grpc_port = $grpc:literal, ops_port = $ops:literal
            $(, queue = $queue:literal)?, serve = $serve:path $(, command = $($command:ident)::+)? $(,)?
        )]
        $(#[$meta:meta])*
        $vis:vis struct $config:ident { $($body:tt)* }
    ) => {
        /// The service's own migrations (the events library's outbox tables are merged in at start).
        pub static MIGRATOR: $crate::__private::Migrator = ::sqlx::migrate!("./migrations");

        $(#[doc = $doc])*
        #[derive(Debug, Clone, clap::Parser)]
        #[command(
            name = concat!("ordo-", $name),
            version,
            about = concat!("Ordo's ", $name, " service"),
            mut_arg("grpc_addr", $crate::default_to(concat!("127.0.0.1:", $grpc))),
            mut_arg("ops_addr", $crate::default_to(concat!("127.0.0.1:", $ops))),
            mut_arg("database_url", $crate::default_to(concat!("mysql://root@127.0.0.1:3306/ordo_", $name)))
        )]
        $(#[$meta])*
        $vis struct $config {
            /// What to do; without a command the service runs.
            #[command(subcommand)]
            pub command: Option<$crate::config!(@command $($($command)::+)?)>,
            /// The flags every service shares.
            #[command(flatten)]
            pub service: $crate::ServiceArgs,
            $(
                /// The durable queue this service consumes other contexts' events from.
                #[arg(long, env = "ORDO_EVENTS_QUEUE", default_value = $queue)]
                pub events_queue: String,
            )?
            $($body)*
        }

        impl $crate::Service for $config {
            const NAME: &'static str = concat!("ordo-", $name);

            fn service_args(&self) -> &$crate::ServiceArgs {
                &self.service
            }

            fn migrator() -> &'static $crate::__private::Migrator {
                &MIGRATOR
            }

            $crate::config!(@migrate_only $($($command)::+)?);
            $(
                fn events_queue(&self) -> Option<&str> {
                    let _: &str = $queue;
                    Some(&self.events_queue)
                }
            )?

            fn serve(
                self,
                listeners: $crate::Listeners,
                shutdown: $crate::CancellationToken,
            ) -> impl ::std::future::Future<Output = $crate::__private::anyhow::Result<()>> + Send {
                $serve(self, listeners, shutdown)
            }
        }

        #[cfg(test)]
        mod config_tests {
            #[test]
            fn the_service_runs_on_a_developer_machine_without_a_flag() {
                use clap::{CommandFactory as _, Parser as _};
                super::$config::command().debug_assert();
                let config = super::$config::try_parse_from([concat!("ordo-", $name)]);
                let config = config.unwrap_or_else(|error| panic!("{error}"));
                assert_eq!(config.service.grpc_addr.to_string(), concat!("127.0.0.1:", $grpc));
                assert_eq!(config.service.ops_addr.to_string(), concat!("127.0.0.1:", $ops));
                assert_eq!(config.service.database_url.expose(), concat!("mysql://root@127.0.0.1:3306/ordo_", $name));
            }
        }
    };
    (@command) => { $crate::Command };
    (@command $($command:ident)::+) => { $($command)::+ };
    (@migrate_only) => {
        fn migrate_only(&self) -> bool {
            matches!(self.command, Some($crate::Command::Migrate))
        }
        fn replay_limit(&self) -> Option<u64> {
            match &self.command {
                Some($crate::Command::ReplayDeadLetters(replay)) => Some(replay.limit),
                _ => None,
            }
        }
    };
    (@migrate_only $($command:ident)::+) => {
        fn migrate_only(&self) -> bool {
            matches!(self.command, Some($($command)::+::Migrate))
        }
    };
}

/// The subcommands of a service that consumes events (a service with commands of its own adds these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Create the schema if needed, apply migrations, and exit.
    Migrate,
    /// Move the messages of the service's dead-letter queue back to its event queue, to be applied
    /// again once the cause of their failure is fixed, and exit. Prints how many as JSON.
    ReplayDeadLetters(ReplayArgs),
}

/// The flags of `replay-dead-letters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct ReplayArgs {
    /// The most messages to move; at most those present when the replay starts are moved, so one
    /// that fails again is not replayed in a loop.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub limit: u64,
}

/// Moves up to `limit` messages of the dead-letter queue of `queue` back to `queue` (see
/// [`ordo_events::replay_dead_letters`]) and prints `{"replayed": n}`.
///
/// # Errors
///
/// When the broker cannot be reached, the queues do not exist, or a copy is not confirmed.
pub async fn replay_dead_letters(args: &ServiceArgs, service: &str, queue: &str, limit: u64) -> anyhow::Result<u64> {
    let config = args.consumer_config(queue, service, ["#"]);
    let replayed = ordo_events::replay_dead_letters(&config, limit).await.context("replay the dead letters")?;
    println!("{}", serde_json::json!({"replayed": replayed}));
    Ok(replayed)
}

/// The whole `main` of a service `S`: parse, start the runtime and telemetry, then migrate or serve
/// until SIGTERM or Ctrl-C.
pub fn run<S: Service>() -> anyhow::Result<()> {
    main(migrate_or_serve::<S>)
}

/// Replays dead letters or applies the migrations when `config` asks for that, else binds the
/// configured addresses and serves until SIGTERM or Ctrl-C.
pub async fn migrate_or_serve<S: Service>(config: S) -> anyhow::Result<()> {
    if let Some(limit) = config.replay_limit() {
        let queue = config.events_queue().context("this service consumes no events")?;
        replay_dead_letters(config.service_args(), S::NAME, queue, limit).await?;
        return Ok(());
    }
    if config.migrate_only() {
        Backends::migrate(config.service_args(), S::migrator()).await?.close().await;
        tracing::info!("migrations applied");
        return Ok(());
    }
    let listeners = bind(config.service_args()).await?;
    config.serve(listeners, ordo_platform::shutdown::on_signal()).await
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
pub async fn bind(args: &ServiceArgs) -> anyhow::Result<Listeners> {
    let grpc = TcpListener::bind(args.grpc_addr).await.with_context(|| format!("bind {}", args.grpc_addr))?;
    let ops = TcpListener::bind(args.ops_addr).await.with_context(|| format!("bind {}", args.ops_addr))?;
    Ok(Listeners { grpc, ops })
}
