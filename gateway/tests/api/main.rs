//! End-to-end tests of the gateway: each test runs identity and the gateway on free ports with a
//! fresh schema and Redis prefix, and talks HTTP to the gateway.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod errors;
mod helpers;
mod idempotency;
mod openapi;
mod operations;
mod sessions;
mod tokens;
mod users;
