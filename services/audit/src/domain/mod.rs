//! The audit log's domain: records, their canonical bytes and hash chain, and the verification of a
//! chain. Plain Rust (SHA-256 from `sha2`): no I/O here.

mod chain;
mod record;

pub use chain::{Anchor, Verdict, Verifier};
pub use record::{Entry, GENESIS, Record, canonical_bytes, hash};
