//! The JSON of `/audit`: the filters its routes read, and the records and verdicts they answer with,
//! translated from the audit service's messages.

use ordo_proto::audit::v1 as pb;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::routes::representation::{malformed, non_empty, timestamp};

/// `GET /audit/events` query parameters. Every filter is an exact match, and a record must match all
/// that are given. An empty value is a `400`: it would read as "records without an actor" (or
/// project, ...), which the log cannot be asked for; leave the parameter out to match any value.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListAuditEventsParams {
    /// Only events caused by this user. A UUID (any case or form; compared in canonical form), else
    /// `400`.
    #[param(format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub(super) actor_id: Option<String>,
    /// Only events of this type, such as `identity.login_failed` or `project.member_added`.
    #[param(example = "identity.login_failed")]
    pub(super) action: Option<String>,
    /// Only events about this kind of entity: `user`, `session`, `project`, `project_member`, ...
    #[param(example = "project")]
    pub(super) entity_type: Option<String>,
    /// Only events about the entity with this id (exact, case-sensitive).
    pub(super) entity_id: Option<String>,
    /// Only events of this project. A UUID (any case or form), else `400`. Required unless the caller
    /// is a global admin.
    #[param(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000a1")]
    pub(super) project_id: Option<String>,
    /// Only events that happened at or after this time (inclusive). RFC 3339, such as
    /// `2026-01-31T09:30:00Z`; encode a `+` offset as `%2B`. Unparseable: `400`.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-01-31T09:30:00Z")]
    pub(super) from: Option<String>,
    /// Only events that happened before this time (exclusive). RFC 3339, as `from`. A range that is
    /// empty (`to` at or before `from`) matches nothing.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-02-01T00:00:00Z")]
    pub(super) to: Option<String>,
    /// The `next_cursor` of the previous page.
    pub(super) cursor: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50)]
    pub(super) limit: Option<String>,
}

/// The part of the chain `GET /audit/verify` checks.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct VerifyAuditLogParams {
    /// The `next_cursor` of the part before; absent: from the first record present.
    pub(super) cursor: Option<String>,
    /// The most records this part checks, 1 to 200,000 (default 100,000).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200000, default = 100000)]
    pub(super) limit: Option<String>,
}

/// One record of the audit log: one domain or security event, placed in the log's SHA-256 hash chain.
///
/// Values the event did not carry (no actor for the system, no project, no client address) are `null`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct AuditRecord {
    /// The event's id (UUID v7); each event is recorded once.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000e1")]
    pub(crate) id: String,
    /// The record's position in the chain: 1, 2, 3, ... with no gap. Lists are sorted by it.
    #[schema(minimum = 1, example = 42)]
    pub(crate) seq: u64,
    /// When the event happened (RFC 3339, UTC, to the microsecond).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) occurred_at: OffsetDateTime,
    /// The event type, `<context>.<event>`: `identity.user_registered`, `identity.login_succeeded`,
    /// `identity.login_failed`, `identity.session_revoked`, `identity.refresh_reuse_detected`,
    /// `identity.password_changed`, `identity.user_role_changed`, `identity.user_disabled`,
    /// `project.created`, `project.updated`, `project.archived`, `project.unarchived`, `project.deleted`,
    /// `project.member_added`, `project.member_role_changed`, `project.member_removed`, and those of
    /// services to come.
    #[schema(example = "project.member_added")]
    pub(crate) action: String,
    /// The user who caused the event; `null` for the system, and for a failed login with an unknown
    /// email.
    #[schema(required = true, format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub(crate) actor_id: Option<String>,
    /// The service that announced the event (`identity`, `project`, ...).
    #[schema(example = "project")]
    pub(crate) producer: String,
    /// What the event is about: `user`, `session`, `project`, `project_member`, ...
    #[schema(example = "project_member")]
    pub(crate) entity_type: String,
    /// Its id (for a `project_member`, the member's user id); `null` when there is none, such as a
    /// failed login with an unknown email.
    #[schema(required = true, example = "0190b6a4-7c1e-7000-8000-000000000002")]
    pub(crate) entity_id: Option<String>,
    /// The project the event belongs to; `null` for events outside projects (accounts, sessions).
    #[schema(required = true, format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000a1")]
    pub(crate) project_id: Option<String>,
    /// The client's address as the gateway saw it; `null` when the event was not caused by a request.
    #[schema(required = true, example = "203.0.113.7")]
    pub(crate) ip: Option<String>,
    /// The client's `User-Agent` (at most 512 characters); `null` when it sent none.
    #[schema(required = true, example = "ordo-web/1.4")]
    pub(crate) user_agent: Option<String>,
    /// The event's own fields: one member named after the event (`user_registered`, `login_failed`,
    /// `project_member_added`, ...) holding its fields with `snake_case` names like the rest of the API
    /// (64-bit integers as strings, fields at their default value left out), such as
    /// `{"login_failed": {"email": "alice@example.com", "user_id": "0190...", "reason": "bad_credentials"}}`;
    /// `{}` for an event the audit service could not read. Served exactly as recorded, since `hash`
    /// covers it: records appended before the audit service wrote `snake_case` carry protobuf's
    /// lowerCamelCase JSON names (`loginFailed`, `userId`) instead.
    #[schema(value_type = Object)]
    pub(crate) data: serde_json::Value,
    /// The `hash` of record `seq - 1`, lower-case hex; 64 zeros for record 1.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub(crate) prev_hash: String,
    /// SHA-256 of the record's canonical bytes, lower-case hex: `prev_hash` is inside them, so each
    /// record seals the whole log before it, and a record edited, removed or inserted breaks the chain
    /// from there on (`GET /audit/verify` finds where).
    ///
    /// The canonical bytes (version 1; the reference is the audit service's
    /// `services/audit/src/domain/record.rs`) are, in order: the 13 ASCII bytes `ordo-audit-v1`;
    /// `seq` as 8 bytes big-endian; `prev_hash` as its 32 bytes; `id` as the UUID's 16 bytes;
    /// `occurred_at` as microseconds since the Unix epoch, 8 bytes big-endian signed; then `action`,
    /// `actor_id`, `producer`, `entity_type`, `entity_id`, `project_id`, `ip`, `user_agent` and `data`,
    /// each as its length in bytes (4 bytes big-endian) followed by its UTF-8 bytes. A `null` here is
    /// the empty string there, and `data` is the compact JSON text of the `data` member (no whitespace,
    /// members in the order served).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub(crate) hash: String,
}

impl AuditRecord {
    /// The JSON form of a record of the audit service.
    pub(crate) fn from_proto(record: pb::Record) -> Result<Self, ApiError> {
        let data: serde_json::Value =
            serde_json::from_str(&record.data_json).map_err(|_| malformed("an audit record whose data is not JSON"))?;
        if !data.is_object() {
            return Err(malformed("an audit record whose data is not a JSON object"));
        }
        Ok(Self {
            occurred_at: timestamp(record.occurred_at)?,
            id: record.id,
            seq: record.seq,
            action: record.action,
            actor_id: non_empty(record.actor_id),
            producer: record.producer,
            entity_type: record.entity_type,
            entity_id: non_empty(record.entity_id),
            project_id: non_empty(record.project_id),
            ip: non_empty(record.ip),
            user_agent: non_empty(record.user_agent),
            data,
            prev_hash: record.prev_hash,
            hash: record.hash,
        })
    }
}

/// A page of audit records, by `seq` ascending.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct AuditRecordPage {
    /// The records of this page, by `seq`.
    pub(crate) items: Vec<AuditRecord>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub(crate) next_cursor: Option<String>,
}

/// The outcome of recomputing the audit log's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct AuditVerification {
    /// `true` when every record of this part has a `hash` that matches its canonical bytes and a
    /// `prev_hash` that is the `hash` of the record before, with no `seq` missing, and (in the part
    /// that reaches it) the head names the last record.
    pub(crate) ok: bool,
    /// How many records this part checked (all of the part when `ok`).
    #[schema(example = 1234)]
    pub(crate) checked: u64,
    /// The first record that was edited, unlinked or is missing; present only when `ok` is `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 1, example = 17)]
    pub(crate) first_bad_seq: Option<u64>,
    /// Where the check started: the lowest `seq` present and its `prev_hash`. `seq` is 1 (and
    /// `prev_hash` 64 zeros) unless older records were archived by partition; then `prev_hash` must
    /// equal the `hash` of the archived segment's last record. Absent while the log is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) anchor: Option<AuditAnchor>,
    /// Pass as `cursor` to check the next part: this one stopped at its `limit` before the head with
    /// the chain intact so far. `null` once the check reached the head, or found a break.
    #[schema(required = true)]
    pub(crate) next_cursor: Option<String>,
}

/// The first record a verification checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct AuditAnchor {
    #[schema(minimum = 1, example = 1)]
    pub(crate) seq: u64,
    /// Lower-case hex SHA-256.
    #[schema(example = "0000000000000000000000000000000000000000000000000000000000000000")]
    pub(crate) prev_hash: String,
}

impl AuditVerification {
    /// The JSON form of the audit service's verdict.
    pub(crate) fn from_proto(verdict: pb::VerifyLogResponse) -> Self {
        Self {
            ok: verdict.ok,
            checked: verdict.checked,
            first_bad_seq: verdict.first_bad_seq,
            anchor: verdict.anchor_seq.map(|seq| AuditAnchor { seq, prev_hash: verdict.anchor_prev_hash }),
            next_cursor: (!verdict.next_cursor.is_empty()).then_some(verdict.next_cursor),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn proto_record() -> pb::Record {
        pb::Record {
            id: "0190b6a4-7c1e-7000-8000-0000000000e1".into(),
            seq: 7,
            occurred_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 123_456_000 }),
            action: "identity.login_failed".into(),
            actor_id: String::new(),
            entity_type: "user".into(),
            entity_id: String::new(),
            project_id: String::new(),
            ip: String::new(),
            user_agent: String::new(),
            data_json: r#"{"loginFailed":{"email":"nobody@example.com","reason":"bad_credentials"}}"#.into(),
            prev_hash: "a".repeat(64),
            hash: "b".repeat(64),
            producer: "identity".into(),
        }
    }

    #[test]
    fn an_audit_record_has_null_for_empty_values_and_its_data_as_an_object() {
        let json = serde_json::to_value(AuditRecord::from_proto(proto_record()).unwrap()).unwrap();

        assert_eq!(
            json,
            serde_json::json!({
                "id": "0190b6a4-7c1e-7000-8000-0000000000e1",
                "seq": 7,
                "occurred_at": "2024-05-01T12:00:00.123456Z",
                "action": "identity.login_failed",
                "actor_id": null,
                "producer": "identity",
                "entity_type": "user",
                "entity_id": null,
                "project_id": null,
                "ip": null,
                "user_agent": null,
                "data": {"loginFailed": {"email": "nobody@example.com", "reason": "bad_credentials"}},
                "prev_hash": "a".repeat(64),
                "hash": "b".repeat(64),
            })
        );
    }

    #[test]
    fn an_audit_record_serves_its_data_as_the_text_that_was_hashed() {
        // The chain covers the text the audit service stored, which it wrote compactly with serde_json;
        // a client writing the served `data` back compactly must get exactly that text again.
        let event = serde_json::json!({"projectCreated": {
            "projectId": "p1", "name": "Café \"Ordo\"\n\u{1}", "key": "K", "createdBy": "u1", "description": "",
        }});
        let stored = serde_json::to_string(&event).unwrap();
        let record = pb::Record { data_json: stored.clone(), ..proto_record() };

        let served = serde_json::to_value(AuditRecord::from_proto(record).unwrap()).unwrap();

        assert_eq!(serde_json::to_string(&served["data"]).unwrap(), stored);
    }

    #[test]
    fn an_audit_record_whose_data_is_not_a_json_object_is_a_backend_fault() {
        for data_json in ["", "not json", "[1]", "\"text\""] {
            let record = pb::Record { data_json: data_json.into(), ..proto_record() };
            assert_eq!(
                AuditRecord::from_proto(record).unwrap_err().status(),
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "{data_json:?}"
            );
        }
    }

    #[test]
    fn a_verification_names_the_first_bad_seq_only_when_the_chain_is_broken() {
        let ok = pb::VerifyLogResponse { ok: true, checked: 12, first_bad_seq: None, ..Default::default() };
        assert_eq!(
            serde_json::to_value(AuditVerification::from_proto(ok)).unwrap(),
            serde_json::json!({"ok": true, "checked": 12, "next_cursor": null})
        );
        let broken = pb::VerifyLogResponse { ok: false, checked: 12, first_bad_seq: Some(5), ..Default::default() };
        assert_eq!(
            serde_json::to_value(AuditVerification::from_proto(broken)).unwrap(),
            serde_json::json!({"ok": false, "checked": 12, "first_bad_seq": 5, "next_cursor": null})
        );
        let archived = pb::VerifyLogResponse {
            ok: true,
            checked: 3,
            anchor_seq: Some(1001),
            anchor_prev_hash: "ab".repeat(32),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(AuditVerification::from_proto(archived)).unwrap(),
            serde_json::json!({"ok": true, "checked": 3, "anchor": {"seq": 1001, "prev_hash": "ab".repeat(32)}, "next_cursor": null})
        );
        let part =
            pb::VerifyLogResponse { ok: true, checked: 2, next_cursor: "AAAAAAAAAAM".into(), ..Default::default() };
        assert_eq!(
            serde_json::to_value(AuditVerification::from_proto(part)).unwrap(),
            serde_json::json!({"ok": true, "checked": 2, "next_cursor": "AAAAAAAAAAM"})
        );
    }
}
