//! The `ordo-identity` binary: parses configuration and runs the service (or `migrate`).

use ordo_identity::{Command, Config};

/// mimalloc rather than glibc's malloc, which took about a tenth of the CPU of a request in
/// profiles (many small buffers allocated and freed on several threads); with mimalloc the
/// `just bench` scenarios through the gateway served 8 to 18 % more requests per second (one run
/// before and one after, same machine).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    ordo_service::main("ordo-identity", |config: Config| async move {
        match config.command {
            Some(Command::Migrate) => {
                ordo_identity::migrate(&config).await?;
                tracing::info!("migrations applied");
                Ok(())
            }
            None => {
                let (grpc, ops) = ordo_service::bind(&config.service).await?;
                ordo_identity::serve(config, grpc, ops, ordo_platform::shutdown::on_signal()).await
            }
        }
    })
}
