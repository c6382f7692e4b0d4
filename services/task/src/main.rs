//! The `ordo-task` binary: parses configuration and runs the service (or `migrate`).

use ordo_task::Config;

fn main() -> anyhow::Result<()> {
    ordo_service::run::<Config>()
}
