//! Integration tests of the outbox, relay and consumer against the real MariaDB and RabbitMQ. Each
//! test owns a fresh schema, exchange and queues (see `ordo-testkit`), so they run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod batch;
mod delivery;
mod helpers;
mod ordering;
mod poison;
mod replay;
mod retention;
