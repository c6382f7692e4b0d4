//! End-to-end tests of the gateway: each test runs identity, project, task, audit, notification and the gateway on free ports
//! with fresh schemas and Redis prefix, and talks HTTP to the gateway.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attachments;
mod audit;
mod auth;
mod authz_matrix;
mod bodies;
mod chaos;
mod digests;
mod errors;
mod exports;
mod hardening;
mod helpers;
mod idempotency;
mod imports;
mod key_rotation;
mod metrics_catalogue;
mod notifications;
mod on_call_metrics;
mod openapi;
mod operations;
mod projects;
mod rate_limits;
mod redis_outage;
mod reports;
mod schemathesis;
mod sessions;
mod shutdown;
mod slow_clients;
mod tasks;
mod token_attacks;
mod tokens;
mod traces;
mod users;
mod web_push;
mod webhooks;
