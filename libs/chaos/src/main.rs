//! `ordo-chaos`: the resilience proof against Ordo's release binaries, as real processes on this
//! machine, from a process of its own.
//!
//! `ordo-chaos chaos` (`just chaos`) starts the whole stack, drives a steady mixed load through the
//! gateway (logins, creates, reads, lists, updates, moves, comments, live notification streams) and
//! injects one fault at a time: SIGKILL of each service and of the gateway and a restart, SIGTERM
//! (the graceful drain) of each, a RabbitMQ restart, a MariaDB restart and Redis away for 30 s. After
//! each, with the load paused, it checks from the databases and the API that nothing acknowledged was
//! lost, that every committed event reached audit and notification exactly once in effect, that the
//! outboxes drained and the audit chain verifies, and that the gateway only ever answered successes
//! or `503` with `Retry-After`, in time. It prints a table (Markdown) and exits non-zero on any
//! finding.
//!
//! `ordo-chaos soak` (`just soak`) runs the same load without faults for a number of minutes and
//! records each process's memory, open connections, errors and p99 per operation every minute.
//!
//! The backends are the machine's own: a run really stops them, waits for the old process to exit
//! before starting it again, and makes sure every one of them answers when it ends, failed or not.

mod backends;
mod check;
mod load;
mod mail;
mod report;
mod rounds;
mod scene;
mod soak;
mod stack;
mod streams;
mod usage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Faults under load and a soak against Ordo's release binaries.
#[derive(Debug, Parser)]
#[command(name = "ordo-chaos", args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// One pass of every fault under load (`just chaos`).
    Chaos(rounds::Args),
    /// The load without faults, with memory, connections and latency every minute (`just soak`).
    Soak(soak::Args),
}

/// What both commands share.
#[derive(Debug, clap::Args)]
pub(crate) struct Common {
    /// Where the release binaries are.
    #[arg(long, default_value = "target/release")]
    pub(crate) bin_dir: PathBuf,
    /// Where each process's log and the report go.
    #[arg(long, default_value = "target/chaos")]
    pub(crate) out_dir: PathBuf,
    /// Requests per second of the whole load.
    #[arg(long, default_value_t = 200.0)]
    pub(crate) rate: f64,
    /// Workers sharing the load, each one request at a time.
    #[arg(long, default_value_t = 8)]
    pub(crate) workers: usize,
    /// Live notification streams held open.
    #[arg(long, default_value_t = 4)]
    pub(crate) streams: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ordo-chaos: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let outcome = tokio::select! {
            outcome = run(cli.command) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        // Whatever happened, no backend is left down, nor its buffer pool resized.
        let restored = backends::ensure_up().await;
        soak::restore_buffer_pool().await;
        let mut code = ExitCode::SUCCESS;
        if let Err(error) = &restored {
            eprintln!("ordo-chaos: a backend could not be started again: {error:#}");
            code = ExitCode::FAILURE;
        }
        match outcome {
            Ok(true) => code,
            Ok(false) => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("ordo-chaos: {error:#}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Runs the command; whether it passed.
async fn run(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Chaos(args) => rounds::run(args).await,
        Command::Soak(args) => soak::run(args).await,
    }
}
