//! The JSON of `/notifications`: the list's filters, a notification and a page of them with the
//! caller's counts, and the delivery preferences, translated from and to the notification service's
//! messages.

use std::collections::BTreeMap;

use ordo_proto::notification::v1 as pb;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{BoundedMap, BoundedString};
use crate::routes::representation::{non_empty, optional_timestamp, timestamp};

/// Kinds one preferences update may name per channel; there are ten today, so this leaves room for
/// kinds to come while a body stays small.
const MAX_KINDS: usize = 32;

/// Longest kind name accepted; the service refuses any name it does not know.
const MAX_KIND_CHARS: usize = 64;

/// `GET /notifications` query parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListNotificationsParams {
    /// `true`: only unread notifications; `false` (the default): read and unread ones. Any other value
    /// is a `400`.
    #[param(value_type = Option<bool>, default = false)]
    pub(super) unread_only: Option<String>,
    /// `true`: only archived notifications; `false` (the default): only those not archived. Any other
    /// value is a `400`.
    #[param(value_type = Option<bool>, default = false)]
    pub(super) archived: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50)]
    pub(super) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub(super) cursor: Option<String>,
}

/// Something a domain event told the caller. Values the event did not carry are `null`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Notification {
    /// The notification's id (UUID v7).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000f1")]
    pub(crate) id: String,
    /// What happened: `task.assigned`, `task.unassigned`, `task.status_changed`, `task.commented`,
    /// `task.mentioned`, `task.updated` (title or due date), `task.due_soon`, `project.member_added`,
    /// `project.role_changed` or `project.webhook_disabled` (the service turned off a webhook of a
    /// project the caller manages), and kinds to come.
    #[schema(example = "task.assigned")]
    pub(crate) kind: String,
    /// A one-line summary.
    #[schema(example = "ORDO-42 was assigned to you")]
    pub(crate) title: String,
    /// More about it, as plain text.
    #[schema(example = "Add the notification routes")]
    pub(crate) body: String,
    /// The project it happened in.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000a1")]
    pub(crate) project_id: String,
    /// The task it is about; `null` for a project notification.
    #[schema(required = true, format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000b1")]
    pub(crate) task_id: Option<String>,
    /// That task's key, `<PROJECT_KEY>-<number>`; `null` for a project notification.
    #[schema(required = true, example = "ORDO-42")]
    pub(crate) task_key: Option<String>,
    /// Who caused it; `null` for a scheduled one (`task.due_soon`).
    #[schema(required = true, format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub(crate) actor_id: Option<String>,
    /// When the caller read it (RFC 3339, UTC); `null` while unread.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub(crate) read_at: Option<OffsetDateTime>,
    /// When the caller first saw it in the bell (`POST /notifications/seen`); `null` while unseen.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub(crate) seen_at: Option<OffsetDateTime>,
    /// When the caller archived it; `null` unless archived.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub(crate) archived_at: Option<OffsetDateTime>,
    /// When it was made (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) created_at: OffsetDateTime,
}

impl Notification {
    /// The JSON form of a notification of the notification service.
    pub(crate) fn from_proto(notification: pb::Notification) -> Result<Self, ApiError> {
        Ok(Self {
            read_at: optional_timestamp(notification.read_at)?,
            seen_at: optional_timestamp(notification.seen_at)?,
            archived_at: optional_timestamp(notification.archived_at)?,
            created_at: timestamp(notification.created_at)?,
            id: notification.id,
            kind: notification.kind,
            title: notification.title,
            body: notification.body,
            project_id: notification.project_id,
            task_id: non_empty(notification.task_id),
            task_key: non_empty(notification.task_key),
            actor_id: non_empty(notification.actor_id),
        })
    }
}

/// A page of the caller's notifications, newest first, with the caller's counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct NotificationPage {
    /// The notifications of this page, newest first.
    pub(crate) items: Vec<Notification>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub(crate) next_cursor: Option<String>,
    /// How many of the caller's notifications that are not archived are unread, whatever the filters
    /// and the page.
    #[schema(minimum = 0, example = 3)]
    pub(crate) unread_count: i64,
    /// How many of the caller's notifications that are not archived are unseen (the bell's badge),
    /// whatever the filters and the page.
    #[schema(minimum = 0, example = 1)]
    pub(crate) unseen_count: i64,
}

impl NotificationPage {
    /// The JSON form of a page of the notification service.
    pub(crate) fn from_proto(page: pb::ListNotificationsResponse) -> Result<Self, ApiError> {
        Ok(Self {
            items: page.notifications.into_iter().map(Notification::from_proto).collect::<Result<_, _>>()?,
            next_cursor: crate::pagination::next_cursor(page.next_cursor),
            unread_count: page.unread_count,
            unseen_count: page.unseen_count,
        })
    }
}

/// The caller's badge counts, as a stream's `counts` event carries them.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub(crate) struct Counts {
    /// Unread notifications that are not archived.
    pub(crate) unread_count: i64,
    /// Unseen notifications that are not archived.
    pub(crate) unseen_count: i64,
}

impl Counts {
    /// The JSON form of the notification service's counts.
    pub(crate) fn from_proto(counts: &pb::Counts) -> Self {
        Self { unread_count: counts.unread_count, unseen_count: counts.unseen_count }
    }
}

/// Per channel, whether each kind of notification is delivered: every kind is listed, `true` unless
/// the caller turned it off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct NotificationPreferences {
    /// In the app (the list and the bell), per kind.
    #[schema(example = json!({"task.assigned": true, "task.commented": false}))]
    pub(crate) in_app: BTreeMap<String, bool>,
    /// By email, per kind.
    #[schema(example = json!({"task.assigned": true, "task.due_soon": false}))]
    pub(crate) email: BTreeMap<String, bool>,
}

impl NotificationPreferences {
    /// The JSON form of the notification service's preferences (sorted by kind).
    pub(crate) fn from_proto(preferences: pb::Preferences) -> Self {
        Self { in_app: preferences.in_app.into_iter().collect(), email: preferences.email.into_iter().collect() }
    }
}

/// Kinds turned on (`true`) or off (`false`) on one channel, bounded while the body is read.
type Switches = BoundedMap<BoundedString<MAX_KIND_CHARS>, bool, MAX_KINDS>;

/// Changes to the caller's preferences: the kinds named are set, every other kind keeps its setting.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateNotificationPreferencesBody {
    /// In-app delivery, per kind; absent changes nothing.
    #[serde(default)]
    #[schema(schema_with = switches_schema)]
    pub(super) in_app: Switches,
    /// Email delivery, per kind; absent changes nothing.
    #[serde(default)]
    #[schema(schema_with = switches_schema)]
    pub(super) email: Switches,
}

impl UpdateNotificationPreferencesBody {
    /// The notification service's request.
    pub(crate) fn into_proto(self) -> pb::UpdatePreferencesRequest {
        pb::UpdatePreferencesRequest {
            in_app: self.in_app.into_entries().collect(),
            email: self.email.into_entries().collect(),
        }
    }
}

/// The schema of [`Switches`]: an object of at most 32 booleans, named by kinds of at most 64
/// characters (the service refuses a kind it does not know with `422`).
fn switches_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "Kind → on (`true`) or off (`false`): at most 32 kinds, each a kind of `Notification` (another name is `422`). Kinds left out, or the whole channel left out, keep their setting.",
        ))
        .additional_properties(Some(ObjectBuilder::new().schema_type(Type::Boolean)))
        .property_names(Some(ObjectBuilder::new().schema_type(Type::String).max_length(Some(MAX_KIND_CHARS))))
        .max_properties(Some(MAX_KINDS))
        .examples([serde_json::json!({"task.commented": false})])
        .build()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashMap;

    use axum::http::StatusCode;

    use super::*;
    use crate::extract::parse_json;

    fn proto_notification() -> pb::Notification {
        pb::Notification {
            id: "0190b6a4-7c1e-7000-8000-0000000000f1".into(),
            kind: "project.member_added".into(),
            title: "You were added to Ordo".into(),
            body: "Alice added you as a member.".into(),
            project_id: "0190b6a4-7c1e-7000-8000-0000000000a1".into(),
            task_id: String::new(),
            task_key: String::new(),
            actor_id: String::new(),
            created_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 123_456_000 }),
            read_at: None,
            seen_at: Some(prost_types::Timestamp { seconds: 1_714_564_860, nanos: 0 }),
            archived_at: None,
        }
    }

    #[test]
    fn a_notification_has_null_for_empty_values_and_absent_times() {
        let json = serde_json::to_value(Notification::from_proto(proto_notification()).unwrap()).unwrap();

        assert_eq!(
            json,
            serde_json::json!({
                "id": "0190b6a4-7c1e-7000-8000-0000000000f1",
                "kind": "project.member_added",
                "title": "You were added to Ordo",
                "body": "Alice added you as a member.",
                "project_id": "0190b6a4-7c1e-7000-8000-0000000000a1",
                "task_id": null,
                "task_key": null,
                "actor_id": null,
                "read_at": null,
                "seen_at": "2024-05-01T12:01:00Z",
                "archived_at": null,
                "created_at": "2024-05-01T12:00:00.123456Z",
            })
        );
    }

    #[test]
    fn a_notification_without_its_creation_time_is_a_backend_fault() {
        let notification = pb::Notification { created_at: None, ..proto_notification() };

        assert_eq!(Notification::from_proto(notification).unwrap_err().status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_page_carries_the_counts_and_a_null_cursor_on_the_last_page() {
        let page = pb::ListNotificationsResponse {
            notifications: vec![proto_notification()],
            next_cursor: String::new(),
            unread_count: 4,
            unseen_count: 2,
        };

        let json = serde_json::to_value(NotificationPage::from_proto(page).unwrap()).unwrap();

        assert_eq!(json["items"].as_array().unwrap().len(), 1);
        assert_eq!(json["next_cursor"], serde_json::Value::Null);
        assert_eq!((json["unread_count"].clone(), json["unseen_count"].clone()), (4.into(), 2.into()));
    }

    #[test]
    fn preferences_are_two_maps_of_kinds_to_booleans() {
        let preferences = pb::Preferences {
            in_app: HashMap::from([("task.assigned".to_owned(), true), ("task.commented".to_owned(), false)]),
            email: HashMap::from([("task.assigned".to_owned(), false)]),
        };

        let json = serde_json::to_value(NotificationPreferences::from_proto(preferences)).unwrap();

        assert_eq!(
            json,
            serde_json::json!({
                "in_app": {"task.assigned": true, "task.commented": false},
                "email": {"task.assigned": false},
            })
        );
    }

    #[test]
    fn an_update_sends_the_kinds_named_and_nothing_for_an_absent_channel() {
        let body: UpdateNotificationPreferencesBody = parse_json(br#"{"email": {"task.due_soon": false}}"#).unwrap();

        let request = body.into_proto();

        assert!(request.in_app.is_empty());
        assert_eq!(request.email, HashMap::from([("task.due_soon".to_owned(), false)]));
    }

    #[test]
    fn an_update_over_the_bounds_or_of_another_shape_is_422_naming_the_channel() {
        let many: serde_json::Map<_, _> = (0..=MAX_KINDS).map(|i| (format!("kind.{i}"), true.into())).collect();
        let long = "k".repeat(MAX_KIND_CHARS + 1);
        let bodies = [
            serde_json::json!({ "in_app": many }),
            serde_json::json!({ "in_app": { long: true } }),
            serde_json::json!({ "in_app": null }),
            serde_json::json!({ "in_app": {"task.assigned": "yes"} }),
            serde_json::json!({ "in_app": {}, "sms": {} }),
        ];
        for body in bodies {
            let error = parse_json::<UpdateNotificationPreferencesBody>(body.to_string().as_bytes()).err().unwrap();
            let ApiError::Validation { errors, .. } = error else { panic!("{body}: {error:?}") };
            assert!(
                errors.len() == 1 && ["in_app", "sms"].iter().any(|f| errors[0].field.starts_with(f)),
                "{body}: {errors:?}"
            );
        }
    }
}
