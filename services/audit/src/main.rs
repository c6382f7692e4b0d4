//! The `ordo-audit` binary: parses configuration and runs the service, `migrate` or `verify`.

use anyhow::Context as _;
use clap::Parser as _;
use ordo_audit::{Command, Config};

/// mimalloc rather than glibc's malloc, which took about a tenth of the CPU of a request in
/// profiles (many small buffers allocated and freed on several threads); with mimalloc the
/// `just bench` scenarios through the gateway served 8 to 18 % more requests per second (one run
/// before and one after, same machine).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<std::process::ExitCode> {
    let config = Config::parse();
    // Built by hand rather than with `#[tokio::main]`: the number of workers is a setting.
    config.runtime.build().context("start the runtime")?.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<std::process::ExitCode> {
    let _telemetry = ordo_platform::telemetry::init("ordo-audit", config.log_format)?;
    match config.command {
        Some(Command::Migrate) => {
            ordo_audit::migrate(&config).await?;
            tracing::info!("migrations applied");
            Ok(std::process::ExitCode::SUCCESS)
        }
        Some(Command::Verify) => {
            let verdict = ordo_audit::verify(&config).await?;
            let mut report = serde_json::json!({"ok": verdict.ok(), "checked": verdict.checked});
            if let Some(seq) = verdict.first_bad_seq {
                report["first_bad_seq"] = seq.into();
            }
            // Where the check started: to be matched against the last hash of the archived segment.
            if let Some(anchor) = verdict.anchor {
                report["anchor"] = serde_json::json!({"seq": anchor.seq, "prev_hash": hex::encode(anchor.prev_hash)});
            }
            println!("{report}");
            Ok(if verdict.ok() { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
        }
        None => {
            let grpc = tokio::net::TcpListener::bind(config.grpc_addr)
                .await
                .with_context(|| format!("bind {}", config.grpc_addr))?;
            let ops = tokio::net::TcpListener::bind(config.ops_addr)
                .await
                .with_context(|| format!("bind {}", config.ops_addr))?;
            ordo_audit::serve(config, grpc, ops, ordo_platform::shutdown::on_signal()).await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}
