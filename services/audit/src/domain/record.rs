//! One audit record and the bytes its hash covers.
//!
//! # Canonical encoding (version 1)
//!
//! `hash = SHA-256(bytes)`, where `bytes` is, in order:
//!
//! 1. the 13 ASCII bytes `ordo-audit-v1`;
//! 2. `seq` as 8 bytes, big-endian;
//! 3. `prev_hash`, 32 bytes (the `hash` of record `seq - 1`; 32 zero bytes for `seq = 1`);
//! 4. `id`, the event's UUID, as its 16 bytes;
//! 5. `occurred_at` as microseconds since 1970-01-01T00:00:00Z, 8 bytes, big-endian, signed;
//! 6. `action`, `actor_id`, `producer`, `entity_type`, `entity_id`, `project_id`, `ip`, `user_agent`
//!    and `data`, each as its length in bytes (4 bytes, big-endian) followed by its UTF-8 bytes.
//!
//! `data` is the JSON text as stored. Every field is hashed exactly as the database holds it, so an
//! auditor can recompute the chain from a plain `SELECT` with this description alone.

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

/// The `prev_hash` of the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// The domain tag that starts the canonical bytes; a new encoding gets a new tag.
const TAG: &[u8] = b"ordo-audit-v1";

/// What an event says, as it is recorded (before it is placed in the chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The event id.
    pub id: Uuid,
    /// When it happened, to the microsecond.
    pub occurred_at: OffsetDateTime,
    /// The event type, e.g. `identity.login_failed`.
    pub action: String,
    /// Who caused it; empty for the system.
    pub actor_id: String,
    /// The service that announced it.
    pub producer: String,
    /// What it is about.
    pub entity_type: String,
    /// Its id.
    pub entity_id: String,
    /// The project, if any; empty otherwise.
    pub project_id: String,
    /// The client's address as the gateway saw it.
    pub ip: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
    /// The event's own fields, as JSON text.
    pub data: String,
}

/// The longest value of each bounded column, in characters.
const SHORT: usize = 64;
const ACTION: usize = 100;
const USER_AGENT: usize = 512;

fn bounded(value: &str, max_chars: usize) -> String {
    match value.char_indices().nth(max_chars) {
        Some((end, _)) => value[..end].to_owned(),
        None => value.to_owned(),
    }
}

impl Entry {
    /// An entry with every field cut to what its column holds and the time cut to microseconds, so
    /// that what is hashed is exactly what is stored.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: Uuid,
        occurred_at: OffsetDateTime,
        action: &str,
        actor_id: &str,
        producer: &str,
        entity_type: &str,
        entity_id: &str,
        project_id: &str,
        ip: &str,
        user_agent: &str,
        data: String,
    ) -> Self {
        let micros = occurred_at.nanosecond() / 1_000 * 1_000;
        Self {
            id,
            occurred_at: occurred_at.replace_nanosecond(micros).unwrap_or(occurred_at),
            action: bounded(action, ACTION),
            actor_id: bounded(actor_id, SHORT),
            producer: bounded(producer, SHORT),
            entity_type: bounded(entity_type, SHORT),
            entity_id: bounded(entity_id, SHORT),
            project_id: bounded(project_id, SHORT),
            ip: bounded(ip, SHORT),
            user_agent: bounded(user_agent, USER_AGENT),
            data,
        }
    }

    /// Microseconds since the Unix epoch.
    fn micros(&self) -> i64 {
        i64::try_from(self.occurred_at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
    }
}

/// A record of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// What happened.
    pub entry: Entry,
    /// The hash of the record before.
    pub prev_hash: [u8; 32],
    /// This record's hash.
    pub hash: [u8; 32],
}

impl Record {
    /// Places `entry` after the record `(seq - 1, prev_hash)`.
    pub fn append(entry: Entry, seq: u64, prev_hash: [u8; 32]) -> Self {
        let hash = hash(seq, &prev_hash, &entry);
        Self { seq, entry, prev_hash, hash }
    }

    /// Whether the stored hash is the hash of the stored fields.
    pub fn hash_matches(&self) -> bool {
        hash(self.seq, &self.prev_hash, &self.entry) == self.hash
    }
}

/// The canonical bytes of a record (see the module documentation).
pub fn canonical_bytes(seq: u64, prev_hash: &[u8; 32], entry: &Entry) -> Vec<u8> {
    let strings = [
        &entry.action,
        &entry.actor_id,
        &entry.producer,
        &entry.entity_type,
        &entry.entity_id,
        &entry.project_id,
        &entry.ip,
        &entry.user_agent,
        &entry.data,
    ];
    let mut bytes = Vec::with_capacity(TAG.len() + 64 + strings.iter().map(|s| s.len() + 4).sum::<usize>());
    bytes.extend_from_slice(TAG);
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(prev_hash);
    bytes.extend_from_slice(entry.id.as_bytes());
    bytes.extend_from_slice(&entry.micros().to_be_bytes());
    for value in strings {
        // Column limits keep every value far below 4 GiB.
        bytes.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_be_bytes());
        bytes.extend_from_slice(value.as_bytes());
    }
    bytes
}

/// SHA-256 of the canonical bytes.
pub fn hash(seq: u64, prev_hash: &[u8; 32], entry: &Entry) -> [u8; 32] {
    Sha256::digest(canonical_bytes(seq, prev_hash, entry)).into()
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    pub(crate) fn entry(n: u32) -> Entry {
        Entry::new(
            Uuid::from_u128(u128::from(n)),
            OffsetDateTime::from_unix_timestamp(1_764_000_000 + i64::from(n)).unwrap(),
            "project.created",
            "01a214f5-fd29-70ae-af28-1c6bfe717e2f",
            "project",
            "project",
            "01a214f5-fe11-7587-81bd-1cd475b20ee1",
            "01a214f5-fe11-7587-81bd-1cd475b20ee1",
            "203.0.113.7",
            "curl/8",
            format!("{{\"n\":{n}}}"),
        )
    }

    #[test]
    fn the_encoding_is_stable() {
        // Known answer, computed from the module documentation by an independent implementation
        // (a few lines of Python's hashlib and struct), so a change of the encoding cannot go unnoticed.
        let record = Record::append(entry(1), 1, GENESIS);
        assert_eq!(hex::encode(record.hash), "543407ea4f8b8eab33640578318f21c465e260f880d33f8a1cd9812a4020d6b3");
        let bytes = canonical_bytes(1, &GENESIS, &entry(1));
        assert!(bytes.starts_with(b"ordo-audit-v1\0\0\0\0\0\0\0\x01"));
        assert_eq!(&bytes[13 + 8 + 32..13 + 8 + 32 + 16], Uuid::from_u128(1).as_bytes());
        assert!(bytes.ends_with(b"\0\0\0\x07{\"n\":1}"));
    }

    #[test]
    fn every_field_and_the_position_change_the_hash() {
        let base = Record::append(entry(1), 1, GENESIS);
        let mut variants = Vec::new();
        let mut e = entry(1);
        e.data.push(' ');
        variants.push(hash(1, &GENESIS, &e));
        let mut e = entry(1);
        e.actor_id.clear();
        variants.push(hash(1, &GENESIS, &e));
        let mut e = entry(1);
        e.occurred_at += time::Duration::microseconds(1);
        variants.push(hash(1, &GENESIS, &e));
        variants.push(hash(2, &GENESIS, &entry(1)));
        variants.push(hash(1, &[1; 32], &entry(1)));
        // Moving bytes from one field to the next is not the same record (length prefixes).
        let mut e = entry(1);
        e.ip = "203.0.113.".into();
        e.user_agent = "7curl/8".into();
        variants.push(hash(1, &GENESIS, &e));
        for variant in variants {
            assert_ne!(variant, base.hash);
        }
        assert!(base.hash_matches());
    }

    #[test]
    fn long_values_are_cut_to_their_columns_and_times_to_microseconds() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_789).unwrap();
        let long = "é".repeat(600);
        let e = Entry::new(Uuid::nil(), at, &long, &long, "p", "t", "i", "", "", &long, String::new());
        assert_eq!(e.action.chars().count(), 100);
        assert_eq!(e.actor_id.chars().count(), 64);
        assert_eq!(e.user_agent.chars().count(), 512);
        assert_eq!(e.occurred_at.nanosecond(), 123_456_000);
    }
}
