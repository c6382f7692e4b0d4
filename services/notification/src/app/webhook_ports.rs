//! What the webhook use cases need from the outside world, as traits: the endpoints and their
//! deliveries (MySQL), the project's roles (the project service), where a URL's name points (DNS),
//! and one HTTP attempt.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Result;
use crate::domain::webhook::{Attempt, DisableReason, EventTypes, Outcome, Secret, Signing, Target, TargetError};

/// An endpoint as its managers see it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: Uuid,
    pub project_id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub active: bool,
    /// Why the service turned it off, if it did.
    pub disabled_reason: Option<DisableReason>,
    /// Deliveries per second at most; 0 for no limit.
    pub rate_limit: u32,
    pub created_by: Uuid,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub version: i64,
    pub secret_rotated_at: Option<OffsetDateTime>,
}

/// The fields an update changes (`None` leaves one as it is), checked.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<Target>,
    pub description: Option<String>,
    pub event_types: Option<EventTypes>,
    pub active: Option<bool>,
    pub rate_limit: Option<u32>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    /// Its name in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

/// A delivery: one event on its way to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryInfo {
    pub id: Uuid,
    /// The `webhook-id` it is sent with.
    pub message_id: Uuid,
    pub event_type: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub created_at: OffsetDateTime,
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// One attempt, as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub id: Uuid,
    pub delivery_id: Uuid,
    pub message_id: Uuid,
    pub event_type: String,
    /// 1 for the first of its delivery.
    pub attempt: u32,
    pub attempted_at: OffsetDateTime,
    pub outcome: Outcome,
    pub status_code: Option<u16>,
    pub latency_ms: u32,
    pub excerpt: String,
}

/// Why an update or a delete did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such endpoint in the project.
    NotFound,
    /// It is at another version than expected; the current one.
    Version(i64),
}

/// The endpoints of projects, their deliveries and their log.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Stores `endpoint` signing with `secret`, unless its project has `max` endpoints already
    /// (`false`).
    async fn create(
        &self,
        endpoint: &Endpoint,
        target: &Target,
        types: &EventTypes,
        secret: &Secret,
        max: u64,
    ) -> Result<bool>;
    /// Up to `limit` endpoints of `project_id` after `after` (by id, oldest first).
    async fn list(&self, project_id: Uuid, after: Option<Uuid>, limit: u32) -> Result<Vec<Endpoint>>;
    /// The endpoint `id` of `project_id`.
    async fn get(&self, project_id: Uuid, id: Uuid) -> Result<Option<Endpoint>>;
    /// Applies `change` (at `expected` version, if given) at `now`. Turning the endpoint off marks
    /// its pending deliveries failed; turning it on clears why the service had turned it off.
    async fn update(
        &self,
        project_id: Uuid,
        id: Uuid,
        change: &EndpointChange,
        expected: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<Endpoint, Refusal>>;
    /// Deletes the endpoint (at `expected` version, if given) with its deliveries and log.
    async fn delete(
        &self,
        project_id: Uuid,
        id: Uuid,
        expected: Option<i64>,
    ) -> Result<std::result::Result<(), Refusal>>;
    /// Makes `secret` the endpoint's, keeping the one it replaces as the previous one.
    async fn rotate(
        &self,
        project_id: Uuid,
        id: Uuid,
        secret: &Secret,
        now: OffsetDateTime,
    ) -> Result<Option<Endpoint>>;
    /// Up to `limit` attempts of `endpoint_id` before `before` (by id, newest first).
    async fn attempts(&self, endpoint_id: Uuid, before: Option<Uuid>, limit: u32) -> Result<Vec<AttemptRecord>>;
    /// Queues the event of delivery `delivery_id` of `endpoint_id` again as a new delivery `id`.
    async fn redeliver(
        &self,
        endpoint_id: Uuid,
        delivery_id: Uuid,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<DeliveryInfo>>;
    /// Queues a `webhook.ping` event (id `id`) to `endpoint`.
    async fn ping(&self, endpoint: &Endpoint, id: Uuid, now: OffsetDateTime) -> Result<DeliveryInfo>;
    /// Deletes up to `batch` attempts, and up to `batch` deliveries that are no longer pending,
    /// made before `cutoff`; how many rows went.
    async fn delete_before(&self, cutoff: OffsetDateTime, batch: u32) -> Result<u64>;
}

/// A caller's standing in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The caller cannot see the project (or it does not exist).
    Unseen,
    /// A member with a role weaker than admin.
    Member,
    /// An owner or admin.
    Manager,
}

/// The project service's word on roles.
#[async_trait]
pub trait ProjectRoles: Send + Sync + 'static {
    /// `user_id`'s standing in `project_id`, asked with the caller's `authorization`.
    async fn standing(&self, authorization: &str, project_id: Uuid, user_id: Uuid) -> Result<Standing>;
}

/// Where names point, for checking a URL when an endpoint is made or changed (each delivery checks
/// again when it connects).
#[async_trait]
pub trait AddressCheck: Send + Sync + 'static {
    /// Whether `target` may be called: its address, or every address its name resolves to now.
    async fn check(&self, target: &Target) -> std::result::Result<(), TargetError>;
}

/// What a sender needs of an endpoint.
#[derive(Debug, Clone)]
pub struct EndpointRoute {
    pub id: Uuid,
    pub target: Target,
    pub signing: Signing,
    pub rate_limit: u32,
    pub active: bool,
    pub failing_since: Option<OffsetDateTime>,
}

/// A delivery to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: Uuid,
    pub message_id: Uuid,
    pub body: bytes::Bytes,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What one attempt led to, to store in one transaction.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub attempt_id: Uuid,
    pub delivery_id: Uuid,
    pub endpoint_id: Uuid,
    /// 1 for the first.
    pub attempt: u32,
    pub attempted_at: OffsetDateTime,
    pub outcome: Outcome,
    pub status_code: Option<u16>,
    pub latency: Duration,
    pub excerpt: String,
    /// `None` once the delivery is done (delivered or failed for good).
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Whether it was delivered.
    pub delivered: bool,
    /// Set when this attempt turns the endpoint off.
    pub disable: Option<DisableReason>,
}

/// The queue of deliveries, as senders see it.
#[async_trait]
pub trait DeliveryQueue: Send + Sync + 'static {
    /// Up to `limit` endpoints with deliveries due at `now`.
    async fn due_endpoints(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<Uuid>>;
    /// Takes (or renews) the lease on sending `endpoint_id`'s deliveries for `holder` until `until`;
    /// `false` when another holder has it or the endpoint is off or gone.
    async fn lease(&self, endpoint_id: Uuid, holder: Uuid, now: OffsetDateTime, until: OffsetDateTime) -> Result<bool>;
    /// Gives the lease up.
    async fn release(&self, endpoint_id: Uuid, holder: Uuid) -> Result<()>;
    /// How to send to `endpoint_id`; `None` when it is gone.
    async fn route(&self, endpoint_id: Uuid) -> Result<Option<EndpointRoute>>;
    /// Up to `limit` deliveries of `endpoint_id` due at `now`, oldest first, none waiting behind an
    /// earlier one of the same task that is still pending within its first `hold_attempts`.
    async fn due(
        &self,
        endpoint_id: Uuid,
        now: OffsetDateTime,
        limit: u32,
        hold_attempts: u32,
    ) -> Result<Vec<Outgoing>>;
    /// Stores `result`: the attempt in the log, the delivery's new state, and the endpoint's.
    async fn record(&self, result: &AttemptResult) -> Result<()>;
}

/// One HTTP attempt.
#[async_trait]
pub trait WebhookSend: Send + Sync + 'static {
    /// Posts `body` with `headers` to `target`; never fails (a failure is an answer too).
    async fn send(&self, target: &Target, headers: &[(&'static str, String)], body: bytes::Bytes) -> Attempt;
}
