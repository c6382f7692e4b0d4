//! Ordo's domain events: the transactional outbox a service writes in its own transaction, the relay
//! that publishes outbox rows to the `ordo.events` topic exchange with publisher confirms, and the
//! consumer runtime that applies each event exactly once per consumer (at-least-once delivery plus
//! deduplication by `event_id`), dead-lettering a message after a bounded number of failed attempts.
//!
//! # Producing
//!
//! ```ignore
//! let envelope = EnvelopeBuilder::new("identity", "identity.user_registered")
//!     .actor(user_id)
//!     .entity("user", user_id)
//!     .payload(Payload::UserRegistered(registered))
//!     .build();
//! let mut tx = pool.begin().await?;
//! // ... the change itself ...
//! ordo_events::enqueue(&mut tx, &envelope).await?;
//! tx.commit().await?;
//! signal.notify(); // wake the relay now rather than at its next poll
//! ```
//!
//! # Migrations
//!
//! [`MIGRATOR`] creates `outbox_event`, `outbox_relay` and `processed_event`. Its versions are small
//! integers (`0001`, `0002`, ...) while services version their own migrations with timestamps, so the
//! two sets never collide and ours always sort first. A service runs **one** merged migrator — made
//! with [`merge_migrations`] — rather than two side by side, because sqlx refuses to run a migrator
//! when the schema holds applied versions it does not know:
//!
//! ```ignore
//! static SERVICE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
//! let migrator = ordo_events::merge_migrations(&SERVICE_MIGRATIONS)?;
//! migrator.run(&pool).await?;
//! ```
//!
//! # Consuming
//!
//! Implement [`EventHandler`], then run a [`Consumer`] next to the service. The handler receives the
//! consumer's open transaction; whatever it writes commits together with the dedup row, and only then
//! is the message acknowledged. A consumer that appends many small rows and is bound by commits can
//! implement [`BatchEventHandler`] instead and run [`Consumer::new_batched`]: up to
//! [`BatchConfig::max_batch`] events per transaction, each still applied exactly once, and a batch
//! that fails is applied again one event at a time.
//!
//! # Subscribing
//!
//! For in-process state that every instance keeps (a cache), implement [`Listener`] and run a
//! [`Subscription`]: each instance gets every matching event on a queue of its own that disappears
//! with its connection. There is no database, dedup or retry; [`Listener::on_connected`] says when
//! events may have been missed, so that the listener can drop what it derived from them.
//!
//! # JSON
//!
//! Where an event leaves protobuf (the audit log, webhooks), [`json::PayloadJson`] gives its
//! payload's field name and message as JSON, with the proto field names.

mod amqp;
mod consumer;
mod envelope;
mod error;
pub mod json;
mod outbox;
mod relay;
mod subscription;
mod trace_context;

pub use amqp::{DEFAULT_FRAME_MAX, declare_exchange};
pub use consumer::{BatchConfig, BatchEventHandler, Consumer, ConsumerConfig, EventHandler, replay_dead_letters};
pub use envelope::{EnvelopeBuilder, new_envelope, occurred_at, uuid_field};
pub use error::{Error, HandlerError, Result};
pub use ordo_proto::events::v1::{Envelope, envelope::Payload};
pub use outbox::{ENQUEUE_CHUNK, OutboxSignal, OutboxTx, enqueue, enqueue_all};
pub use relay::{Relay, RelayConfig};
use sqlx::migrate::Migrator;
pub use subscription::{Listener, Subscription, SubscriptionConfig};

/// The migrations of the outbox and dedup tables; merge them into a service's own with
/// [`merge_migrations`] (see the crate documentation for why).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The AMQP `content_type` of every event message.
pub const CONTENT_TYPE: &str = "application/x-protobuf";

/// Returns one migrator that runs this crate's migrations and then the service's, in version order.
///
/// # Errors
///
/// [`Error::MigrationVersionClash`] when the service uses a version this crate already uses; services
/// version with timestamps, so that only happens by mistake.
pub fn merge_migrations(service: &Migrator) -> Result<Migrator> {
    let mut migrations: Vec<_> = MIGRATOR.iter().cloned().collect();
    for migration in service.iter() {
        if MIGRATOR.version_exists(migration.version) {
            return Err(Error::MigrationVersionClash(migration.version));
        }
        migrations.push(migration.clone());
    }
    // `with_migrations` sorts by version, so this crate's and the service's interleave correctly.
    let mut merged = Migrator::with_migrations(migrations);
    merged.set_ignore_missing(service.ignore_missing).set_locking(service.locking);
    merged.no_tx = service.no_tx;
    merged.table_name = service.table_name.clone();
    merged.create_schemas = service.create_schemas.clone();
    Ok(merged)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::borrow::Cow;

    use sqlx::SqlSafeStr as _;
    use sqlx::migrate::{Migration, MigrationType};

    use super::*;

    fn service_migrator(versions: &[i64]) -> Migrator {
        let migrations = versions
            .iter()
            .map(|&version| {
                Migration::new(
                    version,
                    Cow::Owned(format!("service {version}")),
                    MigrationType::Simple,
                    "SELECT 1".into_sql_str(),
                    false,
                )
            })
            .collect::<Vec<_>>();
        Migrator::with_migrations(migrations)
    }

    #[test]
    fn merged_migrations_run_ours_first_then_the_services_in_version_order() {
        let service = service_migrator(&[20_250_102_000_000, 20_250_101_000_000]);

        let merged = merge_migrations(&service).unwrap();

        let versions: Vec<i64> = merged.iter().map(|m| m.version).collect();
        assert_eq!(versions, vec![1, 2, 3, 20_250_101_000_000, 20_250_102_000_000]);
    }

    #[test]
    fn merging_a_service_migration_with_one_of_our_versions_is_refused() {
        let service = service_migrator(&[1]);

        let merged = merge_migrations(&service);

        assert!(matches!(merged, Err(Error::MigrationVersionClash(1))));
    }
}
