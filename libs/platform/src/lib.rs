//! Plumbing every Ordo process shares: typed configuration pieces, telemetry (JSON logs, OpenTelemetry
//! traces, W3C trace context), the small operations HTTP server (`/healthz`, `/readyz`, `/metrics`),
//! MySQL pools with migrations, bounded Redis connections, the AWS SDK's configuration, gRPC server
//! plumbing and graceful shutdown.

pub mod aws;
pub mod config;
pub mod db;
pub mod grpc;
pub mod ops;
pub mod redis;
pub mod shutdown;
pub mod telemetry;

pub use config::{LogFormat, Secret};
pub use ops::{Readiness, ReadinessCheck};
