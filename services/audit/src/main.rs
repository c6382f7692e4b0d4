//! The `ordo-audit` binary: parses configuration and runs the service, `migrate`, `verify` or
//! `replay-dead-letters`.

use std::process::ExitCode;

use ordo_audit::{Command, Config};

fn main() -> anyhow::Result<ExitCode> {
    ordo_service::main(|config: Config| async move {
        match config.command {
            Some(Command::Verify) => return verify(&config).await,
            Some(Command::ReplayDeadLetters(replay)) => {
                ordo_service::replay_dead_letters(&config.service, "ordo-audit", &config.events_queue, replay.limit)
                    .await?;
                return Ok(ExitCode::SUCCESS);
            }
            Some(Command::Migrate) | None => {}
        }
        ordo_service::migrate_or_serve(config).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Verifies the chain and prints the verdict as one JSON object; fails when the log was tampered with.
async fn verify(config: &Config) -> anyhow::Result<ExitCode> {
    let verdict = ordo_audit::verify(config).await?;
    let mut report = serde_json::json!({"ok": verdict.ok(), "checked": verdict.checked});
    if let Some(seq) = verdict.first_bad_seq {
        report["first_bad_seq"] = seq.into();
    }
    // Where the check started: to be matched against the last hash of the archived segment.
    if let Some(anchor) = verdict.anchor {
        report["anchor"] = serde_json::json!({"seq": anchor.seq, "prev_hash": hex::encode(anchor.prev_hash)});
    }
    println!("{report}");
    Ok(if verdict.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
