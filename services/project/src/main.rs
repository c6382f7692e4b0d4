//! The `ordo-project` binary: parses configuration and runs the service (or `migrate`).

use ordo_project::Config;

fn main() -> anyhow::Result<()> {
    ordo_service::run::<Config>()
}
