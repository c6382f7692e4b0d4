//! The `ordo-task` binary: parses configuration and runs the service (or `migrate`).

use anyhow::Context as _;
use clap::Parser as _;
use ordo_task::{Command, Config};

/// mimalloc rather than glibc's malloc, which took about a tenth of the CPU of a request in
/// profiles (many small buffers allocated and freed on several threads); with mimalloc the
/// `just bench` scenarios through the gateway served 8 to 18 % more requests per second (one run
/// before and one after, same machine).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    // Built by hand rather than with `#[tokio::main]`: the number of workers is a setting.
    config.runtime.build().context("start the runtime")?.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let _telemetry = ordo_platform::telemetry::init("ordo-task", config.log_format)?;
    match config.command {
        Some(Command::Migrate) => {
            ordo_task::migrate(&config).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        None => {
            let grpc = tokio::net::TcpListener::bind(config.grpc_addr)
                .await
                .with_context(|| format!("bind {}", config.grpc_addr))?;
            let ops = tokio::net::TcpListener::bind(config.ops_addr)
                .await
                .with_context(|| format!("bind {}", config.ops_addr))?;
            ordo_task::serve(config, grpc, ops, ordo_platform::shutdown::on_signal()).await
        }
    }
}
