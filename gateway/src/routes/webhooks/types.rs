//! The JSON of a project's webhooks: the bodies and queries their routes read, bounded while they are
//! read, and the webhooks, their signing secrets, their delivery log and the deliveries queued they
//! answer with, translated from the notification service's messages.

use axum::http::HeaderValue;
use ordo_proto::notification::v1 as pb;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Array, ArrayBuilder, ObjectBuilder, Type};

use crate::error::ApiError;
use crate::extract::{BoundedString, BoundedVec, ByteBoundedString, not_null, null_is_a_value};
use crate::routes::representation::{etag, malformed, non_empty, optional_timestamp, timestamp};

/// The longest `url`, in bytes (the notification service's rule).
const MAX_URL_BYTES: usize = 2048;

/// The most event types one webhook names.
const MAX_EVENT_TYPES: usize = 50;

/// The longest event type, in bytes.
const MAX_EVENT_TYPE_BYTES: usize = 100;

/// The longest description, in characters.
const MAX_DESCRIPTION_CHARS: usize = 500;

/// An event type as the notification service accepts it: `*`, or lowercase dotted segments of
/// letters, digits and `_`, optionally ending in `.*` (a prefix).
const EVENT_TYPE_PATTERN: &str = r"^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?)$";

/// A webhook's URL, bounded while the body is read.
type WebhookUrl = ByteBoundedString<MAX_URL_BYTES>;

/// A webhook's event types, bounded while the body is read: the array at its `N + 1`st item, each
/// type at its byte limit.
type EventTypes = BoundedVec<ByteBoundedString<MAX_EVENT_TYPE_BYTES>, MAX_EVENT_TYPES>;

/// A webhook's description, bounded while the body is read.
type Description = BoundedString<MAX_DESCRIPTION_CHARS>;

/// A new webhook of a project.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateWebhookBody {
    /// Where deliveries are posted: an absolute `http` or `https` URL without user name, password or
    /// fragment, at most 2048 bytes. An address that is not public (private, loopback, link-local)
    /// is `422` unless the deployment allows it.
    #[schema(value_type = String, format = "uri", max_length = 2048, example = "https://hooks.example.com/ordo")]
    pub(super) url: WebhookUrl,
    /// The events it receives.
    #[schema(schema_with = event_types_schema)]
    pub(super) event_types: EventTypes,
    /// At most 500 characters, trimmed; absent, `null` or `""` for none.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 500, example = "The CI pipeline")]
    pub(super) description: Option<Description>,
    /// Whether it receives events; absent means `true`. A webhook made inactive receives nothing
    /// until it is turned on.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false, default = true, example = true)]
    pub(super) active: Option<bool>,
    /// The most deliveries per second sent to it, 0 to 1000; absent, `null` or `0` for no limit.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1000, default = 0, example = 10)]
    pub(super) rate_limit: Option<u32>,
}

impl CreateWebhookBody {
    /// The notification service's request to make it in `project_id`.
    pub(crate) fn into_proto(self, project_id: String) -> pb::CreateWebhookRequest {
        pb::CreateWebhookRequest {
            project_id,
            url: self.url.into(),
            description: self.description.map(String::from).unwrap_or_default(),
            event_types: self.event_types.into_strings(),
            active: self.active,
            rate_limit: self.rate_limit.unwrap_or_default(),
        }
    }
}

/// Changes to a webhook; absent fields are left as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateWebhookBody {
    /// The new URL, under the rules of `CreateWebhookBody.url`. A webhook always has one, so `null`
    /// is refused (`422`).
    #[serde(default, deserialize_with = "not_null")]
    #[schema(value_type = Option<String>, nullable = false, format = "uri", max_length = 2048, example = "https://hooks.example.com/ordo")]
    pub(super) url: Option<WebhookUrl>,
    /// The new event types, replacing the old ones. A webhook always has some, so `null` is refused
    /// (`422`).
    #[serde(default, deserialize_with = "not_null")]
    #[schema(schema_with = event_types_schema)]
    pub(super) event_types: Option<EventTypes>,
    /// At most 500 characters, trimmed; `null` or `""` removes the description.
    #[serde(default, deserialize_with = "null_is_a_value")]
    #[schema(value_type = Option<String>, max_length = 500, example = "The CI pipeline")]
    pub(super) description: Option<Option<Description>>,
    /// `true` turns the webhook on (and clears `disabled_reason`), `false` off.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false, example = true)]
    pub(super) active: Option<bool>,
    /// The most deliveries per second sent to it, 0 to 1000; `0` removes the limit. `null` is refused
    /// (`422`): send `0`.
    #[serde(default, deserialize_with = "not_null")]
    #[schema(nullable = false, minimum = 0, maximum = 1000, example = 10)]
    pub(super) rate_limit: Option<u32>,
}

impl UpdateWebhookBody {
    /// The notification service's request to change `webhook_id` of `project_id`, if it is still at
    /// `expected_version` when one is given.
    pub(crate) fn to_proto(
        &self,
        project_id: &str,
        webhook_id: &str,
        expected_version: Option<i64>,
    ) -> pb::UpdateWebhookRequest {
        pb::UpdateWebhookRequest {
            project_id: project_id.to_owned(),
            webhook_id: webhook_id.to_owned(),
            url: self.url.clone().map(String::from),
            // The service reads an empty description as "remove it".
            description: self.description.clone().map(|description| description.map(String::from).unwrap_or_default()),
            event_types: self
                .event_types
                .clone()
                .map(|event_types| pb::EventTypes { event_types: event_types.into_strings() }),
            active: self.active,
            rate_limit: self.rate_limit,
            expected_version,
        }
    }
}

/// The schema of [`EventTypes`]: 1 to 50 event types (a repeat counts once), each at most 100 bytes
/// and of the notification service's syntax.
fn event_types_schema() -> Array {
    let event_type = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_EVENT_TYPE_BYTES))
        .pattern(Some(EVENT_TYPE_PATTERN));
    ArrayBuilder::new()
        .items(event_type)
        .min_items(Some(1))
        .max_items(Some(MAX_EVENT_TYPES))
        .description(Some(
            "The events the webhook receives: 1 to 50 exact event types (`task.created`, `task.status_changed`, `task.comment_added`, `project.member_added`, ...), prefixes ending in `.*` (`task.*`), or `*` for every event; each at most 100 bytes. A type named twice counts once.",
        ))
        .examples([serde_json::json!(["task.*", "project.member_added"])])
        .build()
}

/// Why the service turned a webhook off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DisabledReason {
    /// It answered `410 Gone`.
    Gone,
    /// Its deliveries failed for 5 days without one success.
    Failing,
}

impl DisabledReason {
    /// The service's reason; its "none" (an empty string) is `None`.
    fn from_proto(reason: &str) -> Result<Option<Self>, ApiError> {
        match reason {
            "" => Ok(None),
            "gone" => Ok(Some(Self::Gone)),
            "failing" => Ok(Some(Self::Failing)),
            _ => Err(malformed("a webhook turned off for an unknown reason")),
        }
    }
}

/// An endpoint of a project that receives the project's events as signed HTTP `POST`s.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Webhook {
    /// The webhook id (UUID v7).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000c1")]
    pub(crate) id: String,
    /// The project whose events it receives.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000a1")]
    pub(crate) project_id: String,
    /// Where deliveries are posted (normalised: `HTTPS://Example.com` reads `https://example.com/`).
    #[schema(format = "uri", example = "https://hooks.example.com/ordo")]
    pub(crate) url: String,
    /// At most 500 characters; `null` when it has none.
    #[schema(required = true, example = "The CI pipeline")]
    pub(crate) description: Option<String>,
    /// The events it receives: exact types (`task.created`), prefixes (`task.*`), or `*`.
    #[schema(example = json!(["task.*", "project.member_added"]))]
    pub(crate) event_types: Vec<String>,
    /// Whether events are sent to it. An inactive webhook is sent nothing, not even pings or
    /// redeliveries.
    pub(crate) active: bool,
    /// Why the service turned it off: `gone` (it answered `410`) or `failing` (5 days of failures
    /// without a success); `null` while active, or when a person turned it off.
    #[schema(required = true)]
    pub(crate) disabled_reason: Option<DisabledReason>,
    /// The most deliveries per second sent to it; 0 for no limit.
    #[schema(minimum = 0, maximum = 1000, example = 0)]
    pub(crate) rate_limit: u32,
    /// The user who made it.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-000000000001")]
    pub(crate) created_by: String,
    /// When it was made (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) created_at: OffsetDateTime,
    /// When it last changed (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) updated_at: OffsetDateTime,
    /// Increases on every change; sent as `ETag: "<version>"`, checked against `If-Match`.
    #[schema(example = 1)]
    pub(crate) version: i64,
    /// When its secret was last rotated (RFC 3339, UTC); `null` until the first rotation. The
    /// previous secret signs beside the new one until 24 hours after this.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub(crate) secret_rotated_at: Option<OffsetDateTime>,
}

impl Webhook {
    /// The webhook of a response that must carry one.
    pub(crate) fn from_proto(webhook: Option<pb::Webhook>) -> Result<Self, ApiError> {
        let webhook = webhook.ok_or_else(|| malformed("a response without its webhook"))?;
        Ok(Self {
            disabled_reason: DisabledReason::from_proto(&webhook.disabled_reason)?,
            created_at: timestamp(webhook.created_at)?,
            updated_at: timestamp(webhook.updated_at)?,
            secret_rotated_at: optional_timestamp(webhook.secret_rotated_at)?,
            id: webhook.id,
            project_id: webhook.project_id,
            url: webhook.url,
            description: non_empty(webhook.description),
            event_types: webhook.event_types,
            active: webhook.active,
            rate_limit: webhook.rate_limit,
            created_by: webhook.created_by,
            version: webhook.version,
        })
    }

    /// `ETag: "<version>"`.
    pub(crate) fn etag(&self) -> HeaderValue {
        etag(self.version)
    }
}

/// A webhook with its signing secret: the answer of making one and of rotating its secret, the only
/// two that show the secret.
#[derive(Clone, Serialize, ToSchema)]
pub(crate) struct WebhookWithSecret {
    /// The webhook.
    #[serde(flatten)]
    pub(crate) webhook: Webhook,
    /// The signing secret: `whsec_` and the base64 of the key. Verify each delivery's
    /// `webhook-signature` with the base64-decoded part after `whsec_`. Shown only here: store it now.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub(crate) secret: String,
}

impl std::fmt::Debug for WebhookWithSecret {
    /// Everything but the secret, so no log shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookWithSecret").field("webhook", &self.webhook).finish_non_exhaustive()
    }
}

impl WebhookWithSecret {
    /// The webhook and secret of a create or rotate response, which must carry both.
    pub(crate) fn from_proto(webhook: Option<pb::Webhook>, secret: String) -> Result<Self, ApiError> {
        if secret.is_empty() {
            return Err(malformed("a webhook without its secret"));
        }
        Ok(Self { webhook: Webhook::from_proto(webhook)?, secret })
    }

    /// `ETag: "<version>"` of the webhook.
    pub(crate) fn etag(&self) -> HeaderValue {
        self.webhook.etag()
    }
}

/// A page of a project's webhooks, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct WebhookPage {
    /// The webhooks of this page.
    pub(crate) items: Vec<Webhook>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub(crate) next_cursor: Option<String>,
}

impl WebhookPage {
    /// The JSON form of a page of the notification service.
    pub(crate) fn from_proto(page: pb::ListWebhooksResponse) -> Result<Self, ApiError> {
        Ok(Self {
            items: page
                .webhooks
                .into_iter()
                .map(|webhook| Webhook::from_proto(Some(webhook)))
                .collect::<Result<_, _>>()?,
            next_cursor: crate::pagination::next_cursor(page.next_cursor),
        })
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AttemptOutcome {
    /// The webhook answered `2xx` within 15 s.
    Delivered,
    /// It answered another HTTP status (`3xx` included: redirects are not followed).
    Failed,
    /// It did not answer within 15 s.
    Timeout,
    /// No answer at all: the name did not resolve (or resolved to an address the deployment does not
    /// send to), the connection failed, or the response was broken.
    Unreachable,
}

impl AttemptOutcome {
    fn from_proto(outcome: &str) -> Result<Self, ApiError> {
        match outcome {
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            "timeout" => Ok(Self::Timeout),
            "unreachable" => Ok(Self::Unreachable),
            _ => Err(malformed("a webhook attempt with an unknown outcome")),
        }
    }
}

/// One attempt to deliver one event to a webhook, as its delivery log shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct WebhookAttempt {
    /// The attempt's own id.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000e1")]
    pub(crate) id: String,
    /// The delivery it belongs to (one event to one webhook, tried until it succeeds or gives up);
    /// send it again with `POST .../deliveries/{delivery_id}/redeliver`.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000d1")]
    pub(crate) delivery_id: String,
    /// The `webhook-id` sent: the event's id (a ping's own id), the same on every retry and
    /// redelivery.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000f1")]
    pub(crate) message_id: String,
    /// The event's type, such as `task.created` or `webhook.ping`.
    #[schema(example = "task.created")]
    pub(crate) event_type: String,
    /// 1 for the first attempt of its delivery.
    #[schema(minimum = 1, example = 1)]
    pub(crate) attempt: u32,
    /// When it was made (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) attempted_at: OffsetDateTime,
    /// How it ended.
    pub(crate) outcome: AttemptOutcome,
    /// The HTTP status answered; `null` when there was none (`timeout`, `unreachable`).
    #[schema(required = true, minimum = 100, maximum = 999, example = 200)]
    pub(crate) status_code: Option<u16>,
    /// From sending the request to the answer's head (or to the failure), in milliseconds.
    #[schema(example = 87)]
    pub(crate) latency_ms: u32,
    /// The start of the response body (at most 1 KiB, invalid UTF-8 replaced), or why nothing was
    /// answered.
    #[schema(example = "ok")]
    pub(crate) response_excerpt: String,
}

impl WebhookAttempt {
    /// The JSON form of an attempt of the notification service.
    pub(crate) fn from_proto(attempt: pb::WebhookAttempt) -> Result<Self, ApiError> {
        let status_code = match attempt.status_code {
            0 => None,
            code => Some(u16::try_from(code).map_err(|_| malformed("an HTTP status out of range"))?),
        };
        Ok(Self {
            outcome: AttemptOutcome::from_proto(&attempt.outcome)?,
            attempted_at: timestamp(attempt.attempted_at)?,
            status_code,
            id: attempt.id,
            delivery_id: attempt.delivery_id,
            message_id: attempt.message_id,
            event_type: attempt.event_type,
            attempt: attempt.attempt,
            latency_ms: attempt.latency_ms,
            response_excerpt: attempt.response_excerpt,
        })
    }
}

/// A page of a webhook's delivery log, newest attempt first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct WebhookAttemptPage {
    /// The attempts of this page, newest first.
    pub(crate) items: Vec<WebhookAttempt>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub(crate) next_cursor: Option<String>,
}

impl WebhookAttemptPage {
    /// The JSON form of a page of the notification service.
    pub(crate) fn from_proto(page: pb::ListWebhookDeliveriesResponse) -> Result<Self, ApiError> {
        Ok(Self {
            items: page.attempts.into_iter().map(WebhookAttempt::from_proto).collect::<Result<_, _>>()?,
            next_cursor: crate::pagination::next_cursor(page.next_cursor),
        })
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// An attempt succeeded.
    Delivered,
    /// Out of attempts, or the webhook was turned off while it waited.
    Failed,
}

impl DeliveryState {
    fn from_proto(state: &str) -> Result<Self, ApiError> {
        match state {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            _ => Err(malformed("a webhook delivery in an unknown state")),
        }
    }
}

/// One event on its way to one webhook.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct WebhookDelivery {
    /// The delivery's id; its attempts carry it as `delivery_id`.
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000d2")]
    pub(crate) id: String,
    /// The `webhook-id` it is sent with: the event's id (a ping's own id).
    #[schema(format = Uuid, example = "0190b6a4-7c1e-7000-8000-0000000000f1")]
    pub(crate) message_id: String,
    /// The event's type, such as `task.created` or `webhook.ping`.
    #[schema(example = "webhook.ping")]
    pub(crate) event_type: String,
    /// Where it stands.
    pub(crate) state: DeliveryState,
    /// Attempts made so far.
    #[schema(minimum = 0, example = 0)]
    pub(crate) attempts: u32,
    /// When it was queued (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) created_at: OffsetDateTime,
    /// When its next attempt is due (RFC 3339, UTC); `null` once it is no longer pending.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub(crate) next_attempt_at: Option<OffsetDateTime>,
}

impl WebhookDelivery {
    /// The JSON form of a delivery of the notification service.
    pub(crate) fn from_proto(delivery: pb::WebhookDelivery) -> Result<Self, ApiError> {
        Ok(Self {
            state: DeliveryState::from_proto(&delivery.state)?,
            created_at: timestamp(delivery.created_at)?,
            next_attempt_at: optional_timestamp(delivery.next_attempt_at)?,
            id: delivery.id,
            message_id: delivery.message_id,
            event_type: delivery.event_type,
            attempts: delivery.attempts,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::http::StatusCode;
    use serde_json::Value;

    use super::*;
    use crate::extract::parse_json;

    fn proto_webhook() -> pb::Webhook {
        pb::Webhook {
            id: "0190b6a4-7c1e-7000-8000-0000000000c1".into(),
            project_id: "0190b6a4-7c1e-7000-8000-0000000000a1".into(),
            url: "https://hooks.example.com/ordo".into(),
            description: String::new(),
            event_types: vec!["task.*".into()],
            active: true,
            disabled_reason: String::new(),
            rate_limit: 0,
            created_by: "0190b6a4-7c1e-7000-8000-000000000001".into(),
            created_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 0 }),
            updated_at: Some(prost_types::Timestamp { seconds: 1_714_564_801, nanos: 0 }),
            version: 3,
            secret_rotated_at: None,
        }
    }

    fn error_fields(error: ApiError) -> (StatusCode, Vec<String>) {
        let status = error.status();
        match error {
            ApiError::Validation { errors, .. } => (status, errors.into_iter().map(|e| e.field).collect()),
            _ => (status, Vec::new()),
        }
    }

    #[test]
    fn a_webhook_has_null_for_the_services_nones_and_its_version_as_etag() {
        let webhook = Webhook::from_proto(Some(proto_webhook())).unwrap();

        let json = serde_json::to_value(&webhook).unwrap();

        assert_eq!(
            json,
            serde_json::json!({
                "id": "0190b6a4-7c1e-7000-8000-0000000000c1",
                "project_id": "0190b6a4-7c1e-7000-8000-0000000000a1",
                "url": "https://hooks.example.com/ordo",
                "description": null,
                "event_types": ["task.*"],
                "active": true,
                "disabled_reason": null,
                "rate_limit": 0,
                "created_by": "0190b6a4-7c1e-7000-8000-000000000001",
                "created_at": "2024-05-01T12:00:00Z",
                "updated_at": "2024-05-01T12:00:01Z",
                "version": 3,
                "secret_rotated_at": null,
            })
        );
        assert_eq!(webhook.etag(), "\"3\"");
    }

    #[test]
    fn a_webhook_the_service_turned_off_says_why() {
        let proto = pb::Webhook {
            active: false,
            disabled_reason: "gone".into(),
            secret_rotated_at: Some(prost_types::Timestamp { seconds: 1_714_564_900, nanos: 0 }),
            ..proto_webhook()
        };

        let json = serde_json::to_value(Webhook::from_proto(Some(proto)).unwrap()).unwrap();

        assert_eq!((json["active"].clone(), json["disabled_reason"].clone()), (false.into(), "gone".into()));
        assert_eq!(json["secret_rotated_at"], "2024-05-01T12:01:40Z");
        let unknown = pb::Webhook { disabled_reason: "tired".into(), ..proto_webhook() };
        assert_eq!(Webhook::from_proto(Some(unknown)).unwrap_err().status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn the_secret_sits_beside_the_webhooks_fields_and_never_in_its_debug_form() {
        let created = WebhookWithSecret::from_proto(Some(proto_webhook()), "whsec_c2VjcmV0".into()).unwrap();

        let json = serde_json::to_value(&created).unwrap();

        assert_eq!(json["secret"], "whsec_c2VjcmV0");
        assert_eq!(json["id"], "0190b6a4-7c1e-7000-8000-0000000000c1");
        assert!(!format!("{created:?}").contains("whsec_"));
        let without = WebhookWithSecret::from_proto(Some(proto_webhook()), String::new()).unwrap_err();
        assert_eq!(without.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn an_attempt_without_an_http_status_has_a_null_one() {
        let proto = pb::WebhookAttempt {
            id: "a1".into(),
            delivery_id: "d1".into(),
            message_id: "m1".into(),
            event_type: "task.created".into(),
            attempt: 2,
            attempted_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 0 }),
            outcome: "timeout".into(),
            status_code: 0,
            latency_ms: 15_000,
            response_excerpt: "no answer within 15 s".into(),
        };

        let timeout = serde_json::to_value(WebhookAttempt::from_proto(proto.clone()).unwrap()).unwrap();
        let failed = pb::WebhookAttempt { outcome: "failed".into(), status_code: 503, ..proto };
        let failed = serde_json::to_value(WebhookAttempt::from_proto(failed).unwrap()).unwrap();

        assert_eq!((timeout["outcome"].clone(), timeout["status_code"].clone()), ("timeout".into(), Value::Null));
        assert_eq!((failed["outcome"].clone(), failed["status_code"].clone()), ("failed".into(), 503.into()));
    }

    #[test]
    fn a_pending_delivery_says_when_it_is_next_tried() {
        let proto = pb::WebhookDelivery {
            id: "d1".into(),
            message_id: "m1".into(),
            event_type: "webhook.ping".into(),
            state: "pending".into(),
            attempts: 0,
            created_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 0 }),
            next_attempt_at: Some(prost_types::Timestamp { seconds: 1_714_564_800, nanos: 0 }),
        };

        let json = serde_json::to_value(WebhookDelivery::from_proto(proto.clone()).unwrap()).unwrap();

        assert_eq!(json["state"], "pending");
        assert_eq!(json["next_attempt_at"], "2024-05-01T12:00:00Z");
        let lost = pb::WebhookDelivery { state: "lost".into(), ..proto };
        assert_eq!(WebhookDelivery::from_proto(lost).unwrap_err().status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_create_sends_none_for_absent_optional_fields() {
        let body: CreateWebhookBody =
            parse_json(br#"{"url": "https://example.com/h", "event_types": ["task.*"], "description": null}"#).unwrap();

        let request = body.into_proto("p1".into());

        assert_eq!(request.project_id, "p1");
        assert_eq!(request.event_types, ["task.*"]);
        assert_eq!((request.description.as_str(), request.active, request.rate_limit), ("", None, 0));
    }

    #[test]
    fn an_update_sends_only_the_fields_present_and_an_empty_description_for_null() {
        let body: UpdateWebhookBody = parse_json(br#"{"description": null, "active": false}"#).unwrap();

        let request = body.to_proto("p1", "w1", Some(4));

        assert_eq!(request.description.as_deref(), Some(""));
        assert_eq!(request.active, Some(false));
        assert_eq!((request.url, request.event_types, request.rate_limit), (None, None, None));
        assert_eq!(request.expected_version, Some(4));
        let types: UpdateWebhookBody = parse_json(br#"{"event_types": ["*"], "rate_limit": 0}"#).unwrap();
        let request = types.to_proto("p1", "w1", None);
        assert_eq!(request.event_types, Some(pb::EventTypes { event_types: vec!["*".into()] }));
        assert_eq!((request.description, request.rate_limit), (None, Some(0)));
    }

    #[test]
    fn bodies_over_their_bounds_or_with_null_required_values_are_422_naming_the_field() {
        let long_url = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
        let wide_url = format!("https://example.com/{}", "é".repeat(MAX_URL_BYTES / 2));
        let many: Vec<String> = (0..=MAX_EVENT_TYPES).map(|i| format!("task.t{i}")).collect();
        let long_type = "t".repeat(MAX_EVENT_TYPE_BYTES + 1);
        let long_description = "d".repeat(MAX_DESCRIPTION_CHARS + 1);
        let creates = [
            (serde_json::json!({"url": long_url, "event_types": ["*"]}), "url"),
            (serde_json::json!({"url": wide_url, "event_types": ["*"]}), "url"),
            (serde_json::json!({"url": "https://e.com", "event_types": many}), "event_types"),
            (serde_json::json!({"url": "https://e.com", "event_types": ["*", long_type]}), "event_types[1]"),
            (
                serde_json::json!({"url": "https://e.com", "event_types": ["*"], "description": long_description}),
                "description",
            ),
            (serde_json::json!({"url": "https://e.com", "event_types": ["*"], "active": null}), "active"),
            (serde_json::json!({"url": "https://e.com", "event_types": ["*"], "rate_limit": -1}), "rate_limit"),
            (serde_json::json!({"url": "https://e.com", "event_types": ["*"], "secret": "whsec_x"}), "secret"),
            (serde_json::json!({"event_types": ["*"]}), "url"),
        ];
        for (body, field) in creates {
            let error = parse_json::<CreateWebhookBody>(body.to_string().as_bytes()).err().unwrap();
            assert_eq!(error_fields(error), (StatusCode::UNPROCESSABLE_ENTITY, vec![field.to_owned()]), "{body}");
        }
        for field in ["url", "event_types", "active", "rate_limit"] {
            let body = serde_json::json!({ field: null });
            let error = parse_json::<UpdateWebhookBody>(body.to_string().as_bytes()).err().unwrap();
            assert_eq!(error_fields(error), (StatusCode::UNPROCESSABLE_ENTITY, vec![field.to_owned()]), "{body}");
        }
    }
}
