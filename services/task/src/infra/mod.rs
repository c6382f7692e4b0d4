//! Adapters behind the task service's ports: MySQL (sqlx) for tasks, comments and the outbox, S3 for
//! attachment bytes and the files of exports and imports (written by `export_file`, read by
//! `import_file`), gRPC to the project service for access, and the consumer of the project
//! service's events, and the subscription that keeps the access cache current.

pub mod access_events;
pub mod consumer;
mod envelope;
pub mod export_file;
pub mod import_file;
mod mysql;
pub mod page_cache;
pub mod project;
pub mod s3;

pub use access_events::AccessInvalidation;
pub use consumer::ProjectEventHandler;
pub use export_file::ExportFiles;
pub use import_file::ImportFiles;
pub use mysql::MySqlTaskStore;
pub use page_cache::RedisPageCache;
pub use s3::{S3ObjectStore, S3Settings};
