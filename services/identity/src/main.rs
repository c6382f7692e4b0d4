//! The `ordo-identity` binary: parses configuration and runs the service (or `migrate`).

use ordo_identity::Config;

fn main() -> anyhow::Result<()> {
    ordo_service::run::<Config>()
}
