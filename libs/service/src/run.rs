//! The start of every service binary: configuration, runtime, telemetry, listeners.

use std::future::Future;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::ServiceArgs;

/// What a service's configuration must give the start: its shared flags.
pub trait HasServiceArgs {
    /// The flags every service shares.
    fn service_args(&self) -> &ServiceArgs;
}

/// Parses the configuration `C` from flags and environment, builds the runtime with the configured
/// number of workers, installs telemetry as `name`, and runs `body` on it.
pub fn main<C, F, Fut, T>(name: &'static str, body: F) -> anyhow::Result<T>
where
    C: clap::Parser + HasServiceArgs,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let config = C::parse();
    // Built by hand rather than with `#[tokio::main]`: the number of workers is a setting.
    let runtime = config.service_args().runtime.build().context("start the runtime")?;
    runtime.block_on(async move {
        let _telemetry = ordo_platform::telemetry::init(name, config.service_args().telemetry.log_format)?;
        body(config).await
    })
}

/// Binds the gRPC and ops listeners at the configured addresses.
pub async fn bind(args: &ServiceArgs) -> anyhow::Result<(TcpListener, TcpListener)> {
    let grpc = TcpListener::bind(args.grpc_addr).await.with_context(|| format!("bind {}", args.grpc_addr))?;
    let ops = TcpListener::bind(args.ops_addr).await.with_context(|| format!("bind {}", args.ops_addr))?;
    Ok((grpc, ops))
}
