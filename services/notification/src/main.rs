//! The `ordo-notification` binary: parses configuration and runs the service (or `migrate`).

use ordo_notification::Config;

fn main() -> anyhow::Result<()> {
    ordo_service::run::<Config>()
}
