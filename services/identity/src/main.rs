//! The `ordo-identity` binary: parses configuration and runs the service, `migrate` or `rotate-key`.

use std::time::Duration;

use ordo_identity::{Command, Config};
use time::format_description::well_known::Rfc3339;

fn main() -> anyhow::Result<()> {
    ordo_service::main(|config: Config| async move {
        if let Some(Command::RotateKey { activate_after_secs }) = config.command {
            let rotation = ordo_identity::rotate_key(&config, Duration::from_secs(activate_after_secs.into())).await?;
            let report = serde_json::json!({
                "kid": rotation.kid,
                "x": rotation.public_x,
                "generation": rotation.generation,
                "activate_at": rotation.activate_at.format(&Rfc3339)?,
                "created": rotation.created,
            });
            println!("{report}");
            return Ok(());
        }
        ordo_service::migrate_or_serve(config).await
    })
}
