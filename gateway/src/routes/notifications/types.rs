//! The JSON of `/notifications`: the list's filters, a notification and a page of them with the
//! caller's counts, the delivery preferences, and the Web Push key and subscriptions, translated from
//! and to the notification service's messages.

use std::collections::BTreeMap;

use ordo_proto::notification::v1 as pb;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{BoundedMap, BoundedString, ByteBoundedString, object, object_not_null};
use crate::routes::representation::{malformed, non_empty, optional_timestamp, timestamp};

/// Kinds one preferences update may name per channel; there are ten today, so this leaves room for
/// kinds to come while a body stays small.
const MAX_KINDS: usize = 32;

/// Longest kind name accepted; the service refuses any name it does not know.
const MAX_KIND_CHARS: usize = 64;

/// The longest push endpoint, in bytes (the notification service's rule).
const MAX_PUSH_ENDPOINT_BYTES: usize = 2048;

/// The longest `keys.p256dh` read, in bytes: a P-256 point (65 bytes) is 87 characters of base64url,
/// 88 with padding; the service reads no more than 100.
const MAX_P256DH_BYTES: usize = 100;

/// The longest `keys.auth` read, in bytes: the 16-byte secret is 22 characters of base64url, 24 with
/// padding.
const MAX_AUTH_BYTES: usize = 40;

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
    /// `project.role_changed`, `project.webhook_disabled` (the service turned off a webhook of a
    /// project the caller manages) or `job.ended` (an export or import the caller asked for ended:
    /// done, failed or cancelled), and kinds to come.
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

/// How far one of the caller's background jobs got, as a stream's `job` event carries it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct JobProgress {
    #[schema(format = Uuid)]
    pub(crate) job_id: String,
    #[schema(format = Uuid)]
    pub(crate) project_id: String,
    /// `export` or `import`.
    pub(crate) kind: String,
    /// Tasks written, or created, so far.
    pub(crate) rows_done: u64,
    /// Tasks in all, once known (an import's from its start, an export's with its last page); `null`
    /// until then.
    #[schema(required = true)]
    pub(crate) rows_total: Option<u64>,
}

impl JobProgress {
    /// The JSON form of the notification service's progress.
    pub(crate) fn from_proto(progress: pb::JobProgress) -> Self {
        Self {
            job_id: progress.job_id,
            project_id: progress.project_id,
            kind: progress.kind,
            rows_done: progress.rows_done,
            rows_total: progress.rows_total,
        }
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
    /// By Web Push, to every push subscription of the caller (`POST /notifications/push-subscriptions`),
    /// per kind.
    #[schema(example = json!({"task.assigned": true, "task.commented": false}))]
    pub(crate) push: BTreeMap<String, bool>,
    /// How the `email` kinds go out: at once, as one daily digest, or not at all.
    pub(crate) email_delivery: EmailDelivery,
}

/// How the caller's notification mail goes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct EmailDelivery {
    /// `immediate` (the default): each notification by mail a couple of minutes after it happened,
    /// the changes to one task in that time gathered into one mail. `daily`: one digest a day at
    /// `hour` in `time_zone`, listing the notifications since the last digest that are still unread
    /// (of the kinds `email` leaves on) and the caller's open tasks due that day or overdue; no mail
    /// on a day with nothing to tell. `off`: no notification mail.
    pub(crate) mode: EmailMode,
    /// The digest's hour of the day, from 0 to 23, in `time_zone` (kept while `mode` is not
    /// `daily`). On a day the clocks skip that hour, the digest comes right after the gap; on a day
    /// it repeats, at its first occurrence: one digest per local day.
    #[schema(minimum = 0, maximum = 23, example = 8)]
    pub(crate) hour: u32,
    /// An IANA time zone name; `UTC` until the caller sets one.
    #[schema(example = "Europe/Paris")]
    pub(crate) time_zone: String,
    /// When the next digest goes (RFC 3339, UTC); `null` unless `mode` is `daily`.
    #[schema(example = "2026-12-07T07:00:00Z")]
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) next_digest_at: Option<OffsetDateTime>,
}

/// How notification mail goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EmailMode {
    /// Each notification by mail as it happens.
    Immediate,
    /// One digest a day.
    Daily,
    /// No notification mail.
    Off,
}

impl EmailMode {
    fn as_str(self) -> &'static str {
        match self {
            EmailMode::Immediate => "immediate",
            EmailMode::Daily => "daily",
            EmailMode::Off => "off",
        }
    }

    fn parse(name: &str) -> Result<Self, ApiError> {
        [EmailMode::Immediate, EmailMode::Daily, EmailMode::Off]
            .into_iter()
            .find(|mode| mode.as_str() == name)
            .ok_or_else(|| malformed("the notification service answered an unknown email delivery mode"))
    }
}

impl NotificationPreferences {
    /// The JSON form of the notification service's preferences (sorted by kind).
    pub(crate) fn from_proto(preferences: pb::Preferences) -> Result<Self, ApiError> {
        let delivery = preferences.email_delivery.unwrap_or_default();
        Ok(Self {
            in_app: preferences.in_app.into_iter().collect(),
            email: preferences.email.into_iter().collect(),
            push: preferences.push.into_iter().collect(),
            email_delivery: EmailDelivery {
                mode: EmailMode::parse(&delivery.mode)?,
                hour: delivery.hour,
                time_zone: delivery.time_zone,
                next_digest_at: optional_timestamp(delivery.next_digest_at)?,
            },
        })
    }
}

/// The longest time zone name read (the longest IANA name has 32 characters).
const MAX_TIME_ZONE_CHARS: usize = 64;

/// Changes to how the caller's notification mail goes out; fields left out keep their setting.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmailDeliveryChange {
    /// `immediate`, `daily` or `off`. Turning `daily` on, the first digest lists what happens from
    /// then on; turning it off, the notifications since the last digest are not mailed.
    #[serde(default)]
    pub(super) mode: Option<EmailMode>,
    /// The digest's hour, from 0 to 23 (another number is `422`).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 23, example = 8)]
    pub(super) hour: Option<u8>,
    /// An IANA time zone name, as `Europe/Paris` or `America/New_York` (matched whatever its case;
    /// one the database does not name is `422`).
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 64, example = "Europe/Paris")]
    pub(super) time_zone: Option<BoundedString<MAX_TIME_ZONE_CHARS>>,
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
    /// Web Push delivery, per kind; absent changes nothing.
    #[serde(default)]
    #[schema(schema_with = switches_schema)]
    pub(super) push: Switches,
    /// How the `email` kinds go out; absent changes nothing.
    #[serde(default, deserialize_with = "object_not_null")]
    #[schema(nullable = false)]
    pub(super) email_delivery: Option<EmailDeliveryChange>,
}

impl UpdateNotificationPreferencesBody {
    /// The notification service's request.
    pub(crate) fn into_proto(self) -> pb::UpdatePreferencesRequest {
        pb::UpdatePreferencesRequest {
            in_app: self.in_app.into_entries().collect(),
            email: self.email.into_entries().collect(),
            push: self.push.into_entries().collect(),
            email_delivery: self.email_delivery.map(|change| pb::EmailDeliveryChange {
                mode: change.mode.map(|mode| mode.as_str().to_owned()),
                hour: change.hour.map(u32::from),
                time_zone: change.time_zone.map(String::from),
            }),
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

/// The application server key of this deployment's Web Push (VAPID, RFC 8292).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PushKey {
    /// The public key: base64url without padding of the uncompressed P-256 point (65 bytes), as
    /// `PushManager.subscribe({userVisibleOnly: true, applicationServerKey})` takes it.
    #[schema(example = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM")]
    pub(crate) public_key: String,
}

impl PushKey {
    /// The JSON form of the notification service's key.
    pub(crate) fn from_proto(key: pb::PushKey) -> Result<Self, ApiError> {
        let public_key = non_empty(key.public_key).ok_or_else(|| malformed("an empty push key"))?;
        Ok(Self { public_key })
    }
}

/// A browser's push subscription exactly as `PushSubscription.toJSON()` gives it (Web Push API), so
/// a client posts `JSON.stringify(subscription)` unchanged. `expirationTime` is in camelCase, unlike
/// every other field of this API, because that is how browsers send it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "endpoint": "https://push.example.net/send/dpH5lCsTSSM:APA91bHqj",
    "expirationTime": null,
    "keys": {
        "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        "auth": "BTBZMqHH6r4Tts7J_aSIgg"
    }
}))]
pub(crate) struct PushSubscriptionBody {
    /// The push service's URL for this subscription (`PushSubscription.endpoint`): an absolute `https`
    /// URL without user name, password or fragment, at most 2048 bytes. One whose address is not
    /// public (private, loopback, link-local) is `422` unless the deployment allows it.
    #[schema(value_type = String, format = "uri", max_length = 2048)]
    pub(super) endpoint: ByteBoundedString<MAX_PUSH_ENDPOINT_BYTES>,
    /// When the browser will end the subscription (milliseconds since the Unix epoch), or `null`.
    /// Named in camelCase as browsers send it; accepted and ignored (a subscription the push service
    /// no longer knows is removed when it says so).
    #[serde(rename = "expirationTime")]
    #[schema(value_type = Option<f64>)]
    pub(super) _expiration_time: Option<f64>,
    /// The keys messages are encrypted for.
    #[serde(deserialize_with = "object")]
    pub(super) keys: PushSubscriptionKeys,
}

/// The keys of a push subscription (`PushSubscription.toJSON().keys`), base64url as browsers give
/// them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PushSubscriptionKeys {
    /// The browser's public key (ECDH, P-256): base64url of the uncompressed point, 65 bytes starting
    /// with `0x04`; at most 100 bytes of text. Another value is `422` naming `keys.p256dh`.
    #[schema(value_type = String, max_length = 100)]
    pub(super) p256dh: ByteBoundedString<MAX_P256DH_BYTES>,
    /// The authentication secret: base64url of 16 bytes; at most 40 bytes of text. Another value is
    /// `422` naming `keys.auth`.
    #[schema(value_type = String, max_length = 40)]
    pub(super) auth: ByteBoundedString<MAX_AUTH_BYTES>,
}

impl PushSubscriptionBody {
    /// The notification service's request.
    pub(crate) fn into_proto(self) -> pb::SubscribePushRequest {
        pb::SubscribePushRequest {
            endpoint: self.endpoint.into(),
            p256dh: self.keys.p256dh.into(),
            auth: self.keys.auth.into(),
        }
    }

    /// A refusal of the service with its field names in the body's: the service names the keys
    /// `p256dh` and `auth`, which the body holds under `keys`.
    pub(crate) fn fields_as_sent(error: ApiError) -> ApiError {
        match error {
            ApiError::Validation { detail, mut errors } => {
                for error in &mut errors {
                    if matches!(error.field.as_str(), "p256dh" | "auth") {
                        error.field = format!("keys.{}", error.field);
                    }
                }
                ApiError::Validation { detail, errors }
            }
            other => other,
        }
    }
}

/// One of the caller's push subscriptions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PushSubscription {
    /// The subscription's id (UUID v7); subscribing the same endpoint again keeps it.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000c1")]
    pub(crate) id: String,
    /// The push service's URL, as sent.
    #[schema(format = "uri", example = "https://push.example.net/send/dpH5lCsTSSM:APA91bHqj")]
    pub(crate) endpoint: String,
    /// When the caller first subscribed this endpoint (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) created_at: OffsetDateTime,
}

impl PushSubscription {
    /// The JSON form of the notification service's subscription.
    pub(crate) fn from_proto(subscription: pb::PushSubscription) -> Result<Self, ApiError> {
        Ok(Self {
            created_at: timestamp(subscription.created_at)?,
            id: subscription.id,
            endpoint: subscription.endpoint,
        })
    }
}

/// `DELETE /notifications/push-subscriptions` query parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UnsubscribePushParams {
    /// The endpoint of the subscription to remove (`PushSubscription.endpoint`), URL-encoded; at most
    /// 2048 bytes. Missing or empty is a `400`.
    #[param(required = true, value_type = String, format = "uri", min_length = 1, max_length = 2048)]
    pub(super) endpoint: Option<String>,
}

impl UnsubscribePushParams {
    /// The endpoint, present and within its bound, else a `400`.
    pub(crate) fn endpoint(self) -> Result<String, ApiError> {
        match self.endpoint {
            None => {
                Err(ApiError::BadRequest("endpoint is required: the endpoint of the subscription to remove.".into()))
            }
            Some(endpoint) if endpoint.is_empty() => Err(ApiError::BadRequest("endpoint must not be empty.".into())),
            Some(endpoint) if endpoint.len() > MAX_PUSH_ENDPOINT_BYTES => {
                Err(ApiError::BadRequest(format!("endpoint must be at most {MAX_PUSH_ENDPOINT_BYTES} bytes.")))
            }
            Some(endpoint) => Ok(endpoint),
        }
    }
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
    fn preferences_are_three_maps_of_kinds_to_booleans() {
        let preferences = pb::Preferences {
            in_app: HashMap::from([("task.assigned".to_owned(), true), ("task.commented".to_owned(), false)]),
            email: HashMap::from([("task.assigned".to_owned(), false)]),
            push: HashMap::from([("task.due_soon".to_owned(), false), ("task.assigned".to_owned(), true)]),
            email_delivery: Some(pb::EmailDelivery {
                mode: "daily".to_owned(),
                hour: 8,
                time_zone: "Europe/Paris".to_owned(),
                next_digest_at: Some(prost_types::Timestamp { seconds: 1_796_626_800, nanos: 0 }),
            }),
        };

        let json = serde_json::to_value(NotificationPreferences::from_proto(preferences).unwrap()).unwrap();

        assert_eq!(
            json,
            serde_json::json!({
                "in_app": {"task.assigned": true, "task.commented": false},
                "email": {"task.assigned": false},
                "push": {"task.assigned": true, "task.due_soon": false},
                "email_delivery": {
                    "mode": "daily", "hour": 8, "time_zone": "Europe/Paris", "next_digest_at": "2026-12-07T07:00:00Z",
                },
            })
        );
    }

    #[test]
    fn an_update_of_the_email_delivery_sends_only_the_fields_given() {
        let body: UpdateNotificationPreferencesBody =
            parse_json(br#"{"email_delivery": {"mode": "daily", "time_zone": "Asia/Tokyo"}}"#).unwrap();

        let request = body.into_proto();

        let change = request.email_delivery.unwrap();
        assert_eq!(change.mode.as_deref(), Some("daily"));
        assert_eq!(change.hour, None);
        assert_eq!(change.time_zone.as_deref(), Some("Asia/Tokyo"));
        let body: UpdateNotificationPreferencesBody = parse_json(br#"{"email": {}}"#).unwrap();
        assert!(body.into_proto().email_delivery.is_none());
    }

    #[test]
    fn an_update_sends_the_kinds_named_and_nothing_for_an_absent_channel() {
        let body: UpdateNotificationPreferencesBody = parse_json(br#"{"email": {"task.due_soon": false}}"#).unwrap();

        let request = body.into_proto();

        assert!(request.in_app.is_empty() && request.push.is_empty());
        assert_eq!(request.email, HashMap::from([("task.due_soon".to_owned(), false)]));
    }

    #[test]
    fn an_update_of_push_sends_the_push_kinds_named() {
        let body: UpdateNotificationPreferencesBody =
            parse_json(br#"{"push": {"task.commented": false, "task.assigned": true}}"#).unwrap();

        let request = body.into_proto();

        assert!(request.in_app.is_empty() && request.email.is_empty());
        assert_eq!(
            request.push,
            HashMap::from([("task.commented".to_owned(), false), ("task.assigned".to_owned(), true)])
        );
    }

    #[test]
    fn an_update_over_the_bounds_or_of_another_shape_is_422_naming_the_channel() {
        let many: serde_json::Map<_, _> = (0..=MAX_KINDS).map(|i| (format!("kind.{i}"), true.into())).collect();
        let long = "k".repeat(MAX_KIND_CHARS + 1);
        let bodies = [
            serde_json::json!({ "in_app": many }),
            serde_json::json!({ "in_app": { long.clone(): true } }),
            serde_json::json!({ "in_app": null }),
            serde_json::json!({ "in_app": {"task.assigned": "yes"} }),
            serde_json::json!({ "in_app": {}, "sms": {} }),
            serde_json::json!({ "push": many }),
            serde_json::json!({ "push": { long: true } }),
            serde_json::json!({ "push": null }),
            serde_json::json!({ "email_delivery": {"mode": "weekly"} }),
            serde_json::json!({ "email_delivery": {"hour": 256} }),
            serde_json::json!({ "email_delivery": {"hour": -1} }),
            serde_json::json!({ "email_delivery": {"time_zone": "A".repeat(65)} }),
            serde_json::json!({ "email_delivery": {"minute": 5} }),
            serde_json::json!({ "email_delivery": [null, null] }),
            serde_json::json!({ "email_delivery": null }),
        ];
        for body in bodies {
            let error = parse_json::<UpdateNotificationPreferencesBody>(body.to_string().as_bytes()).err().unwrap();
            let ApiError::Validation { errors, .. } = error else { panic!("{body}: {error:?}") };
            assert!(
                errors.len() == 1
                    && ["in_app", "sms", "push", "email_delivery"].iter().any(|f| errors[0].field.starts_with(f)),
                "{body}: {errors:?}"
            );
        }
    }

    /// A subscription as Chrome's `PushSubscription.toJSON()` gives it (the keys of RFC 8291's example).
    fn browser_subscription() -> serde_json::Value {
        serde_json::json!({
            "endpoint": "https://push.example.net/send/dpH5lCsTSSM:APA91bHqj",
            "expirationTime": null,
            "keys": {
                "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
                "auth": "BTBZMqHH6r4Tts7J_aSIgg",
            },
        })
    }

    fn fields_of(error: ApiError) -> Vec<String> {
        let ApiError::Validation { errors, .. } = error else { panic!("not a 422: {error:?}") };
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_browser_subscription_is_read_as_sent_whatever_its_expiration_time() {
        for expiration in [serde_json::Value::Null, 1_767_225_600_000_u64.into()] {
            let mut json = browser_subscription();
            json["expirationTime"] = expiration;

            let body: PushSubscriptionBody = parse_json(json.to_string().as_bytes()).unwrap();
            let request = body.into_proto();

            assert_eq!(request.endpoint, "https://push.example.net/send/dpH5lCsTSSM:APA91bHqj");
            assert_eq!(request.p256dh, json["keys"]["p256dh"].as_str().unwrap());
            assert_eq!(request.auth, "BTBZMqHH6r4Tts7J_aSIgg");
        }
        let mut without = browser_subscription();
        without.as_object_mut().unwrap().remove("expirationTime");
        assert!(parse_json::<PushSubscriptionBody>(without.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn a_subscription_over_its_bounds_or_of_another_shape_is_422_naming_the_field() {
        let cases = [
            ("/endpoint", serde_json::json!(format!("https://push.example.net/{}", "a".repeat(2048))), "endpoint"),
            ("/keys/p256dh", serde_json::json!("B".repeat(MAX_P256DH_BYTES + 1)), "keys.p256dh"),
            ("/keys/auth", serde_json::json!("é".repeat(MAX_AUTH_BYTES / 2 + 1)), "keys.auth"),
            ("/expirationTime", serde_json::json!("tomorrow"), "expirationTime"),
            ("/keys/auth", serde_json::Value::Null, "keys.auth"),
            ("/keys", serde_json::json!(["BCVx", "AAAA"]), "keys"),
        ];
        for (pointer, value, field) in cases {
            let mut json = browser_subscription();
            *json.pointer_mut(pointer).unwrap() = value;

            let error = parse_json::<PushSubscriptionBody>(json.to_string().as_bytes()).err().unwrap();

            assert_eq!(fields_of(error), [field], "{pointer}");
        }
        let mut extra = browser_subscription();
        extra["keys"]["extra"] = "x".into();
        let error = parse_json::<PushSubscriptionBody>(extra.to_string().as_bytes()).err().unwrap();
        assert_eq!(fields_of(error), ["keys.extra"]);
    }

    #[test]
    fn the_services_refusal_of_a_key_names_it_under_keys() {
        let refused = ApiError::Validation {
            detail: "the subscription cannot be sent to".into(),
            errors: vec![
                crate::error::FieldError::new("endpoint", "a push endpoint is an absolute https URL"),
                crate::error::FieldError::new("p256dh", "not a P-256 point"),
                crate::error::FieldError::new("auth", "not 16 bytes"),
            ],
        };

        let error = PushSubscriptionBody::fields_as_sent(refused);

        assert_eq!(fields_of(error), ["endpoint", "keys.p256dh", "keys.auth"]);
        let conflict = PushSubscriptionBody::fields_as_sent(ApiError::Conflict("at most 10".into()));
        assert_eq!(conflict.status(), StatusCode::CONFLICT);
    }

    #[test]
    fn a_subscription_answers_its_id_endpoint_and_creation_time() {
        let subscription = pb::PushSubscription {
            id: "0190b6a4-7c1e-7000-8000-0000000000c1".into(),
            endpoint: "https://push.example.net/send/1".into(),
            created_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 0 }),
        };

        let json = serde_json::to_value(PushSubscription::from_proto(subscription).unwrap()).unwrap();

        assert_eq!(
            json,
            serde_json::json!({
                "id": "0190b6a4-7c1e-7000-8000-0000000000c1",
                "endpoint": "https://push.example.net/send/1",
                "created_at": "2024-05-01T12:00:00Z",
            })
        );
    }

    #[test]
    fn an_empty_push_key_is_a_backend_fault() {
        let key = PushKey::from_proto(pb::PushKey { public_key: "BNcR".into() }).unwrap();
        assert_eq!(key.public_key, "BNcR");

        let error = PushKey::from_proto(pb::PushKey { public_key: String::new() }).unwrap_err();

        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn an_unsubscribe_needs_an_endpoint_within_its_bound() {
        let endpoint = |endpoint: Option<String>| UnsubscribePushParams { endpoint }.endpoint();

        assert_eq!(
            endpoint(Some("https://push.example.net/send/1".into())).unwrap(),
            "https://push.example.net/send/1"
        );
        for missing in [None, Some(String::new()), Some("a".repeat(MAX_PUSH_ENDPOINT_BYTES + 1))] {
            assert_eq!(endpoint(missing).unwrap_err().status(), StatusCode::BAD_REQUEST);
        }
    }
}
