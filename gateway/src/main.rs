//! `ordo-gateway`: parses the configuration, starts the runtime and telemetry, and serves until
//! SIGTERM or SIGINT.

use anyhow::Context as _;
use clap::Parser as _;

/// mimalloc rather than glibc's malloc, which took about a tenth of the CPU of a request in
/// profiles (many small buffers allocated and freed on several threads); with mimalloc the
/// `just bench` scenarios through the gateway served 8 to 18 % more requests per second (one run
/// before and one after, same machine).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let config = ordo_gateway::Config::parse();
    // Built by hand rather than with `#[tokio::main]`: the number of workers is a setting.
    config.runtime.build().context("start the runtime")?.block_on(run(config))
}

async fn run(config: ordo_gateway::Config) -> anyhow::Result<()> {
    let _telemetry = ordo_platform::telemetry::init("ordo-gateway", config.telemetry.log_format)?;
    let listener =
        tokio::net::TcpListener::bind(config.http_addr).await.with_context(|| format!("bind {}", config.http_addr))?;
    ordo_gateway::serve(config, listener, ordo_platform::shutdown::on_signal()).await
}
