//! A project's webhooks, managed by its owners and admins: endpoints made, listed, changed and
//! deleted, their secret rotated, their log read, a delivery sent again and a ping. The caller's
//! standing is asked first, before any of the request is read further; a project the caller cannot
//! see, and an endpoint of another project, are both "not found".

use std::sync::Arc;

use ordo_error::{FieldViolation, Violations};
use time::OffsetDateTime;
use uuid::Uuid;

use super::cursor;
use super::webhook_ports::{
    AddressCheck, AttemptRecord, DeliveryInfo, Endpoint, EndpointChange, ProjectRoles, Refusal, Standing, WebhookStore,
};
use super::{AppError, Result};
use crate::domain::webhook::{
    EventTypes, MAX_ENDPOINTS_PER_PROJECT, MAX_RATE_LIMIT, SECRET_BYTES, Secret, Target, TargetError, description,
};

/// Who asks: the user and the bearer credential the project service is asked with.
#[derive(Debug, Clone, Copy)]
pub struct Manager<'a> {
    pub user_id: Uuid,
    pub authorization: &'a str,
}

/// What an endpoint is made with, unchecked.
#[derive(Debug, Clone, Default)]
pub struct NewWebhook {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub active: Option<bool>,
    pub rate_limit: u32,
}

/// What an update asks for, unchecked (`None` leaves a field as it is).
#[derive(Debug, Clone, Default)]
pub struct WebhookUpdate {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub active: Option<bool>,
    pub rate_limit: Option<u32>,
    pub expected_version: Option<i64>,
}

/// A page of endpoints or of a log.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The use cases of a project's webhooks.
#[derive(Clone)]
pub struct WebhookService {
    store: Arc<dyn WebhookStore>,
    roles: Arc<dyn ProjectRoles>,
    addresses: Arc<dyn AddressCheck>,
}

impl std::fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookService").finish_non_exhaustive()
    }
}

fn not_found() -> AppError {
    AppError::NotFound("no such webhook".into())
}

/// An id from a request; not even a UUID names nothing.
fn id(raw: &str, what: &'static str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::NotFound(format!("no such {what}").into()))
}

fn rate_limit(value: u32) -> std::result::Result<u32, FieldViolation> {
    if value > MAX_RATE_LIMIT {
        return Err(FieldViolation::new("rate_limit", format!("at most {MAX_RATE_LIMIT} per second (0 for no limit)")));
    }
    Ok(value)
}

fn event_types(raw: &[String]) -> std::result::Result<EventTypes, FieldViolation> {
    EventTypes::parse(raw).map_err(|e| FieldViolation::new("event_types", e.to_string()))
}

fn url_violation(error: TargetError) -> FieldViolation {
    FieldViolation::new("url", error.to_string())
}

fn fresh_secret() -> Secret {
    Secret::from_random(rand::random::<[u8; SECRET_BYTES]>())
}

impl WebhookService {
    /// The use cases over `store`, asking `roles` who manages a project and `addresses` where a
    /// URL points.
    pub fn new(store: Arc<dyn WebhookStore>, roles: Arc<dyn ProjectRoles>, addresses: Arc<dyn AddressCheck>) -> Self {
        Self { store, roles, addresses }
    }

    /// The project `raw` names, once the caller is found to manage it.
    async fn managed(&self, caller: Manager<'_>, raw: &str) -> Result<Uuid> {
        let project_id = id(raw, "project")?;
        match self.roles.standing(caller.authorization, project_id, caller.user_id).await? {
            Standing::Manager => Ok(project_id),
            Standing::Member => {
                Err(AppError::PermissionDenied("only the project's owners and admins manage its webhooks".into()))
            }
            Standing::Unseen => Err(AppError::NotFound("no such project".into())),
        }
    }

    async fn endpoint(&self, project_id: Uuid, raw: &str) -> Result<Endpoint> {
        self.store.get(project_id, id(raw, "webhook")?).await?.ok_or_else(not_found)
    }

    /// Checks `url` and where it points now.
    async fn target(&self, url: &str) -> std::result::Result<Target, FieldViolation> {
        let target = Target::parse(url).map_err(url_violation)?;
        self.addresses.check(&target).await.map_err(url_violation)?;
        Ok(target)
    }

    /// Makes an endpoint of `project` and answers it with its secret (shown this once).
    ///
    /// # Errors
    ///
    /// `NotFound`/`PermissionDenied` for the caller's standing, `Invalid` naming each bad field,
    /// `Conflict` when the project has [`MAX_ENDPOINTS_PER_PROJECT`] already.
    pub async fn create(
        &self,
        caller: Manager<'_>,
        project: &str,
        new: NewWebhook,
        now: OffsetDateTime,
    ) -> Result<(Endpoint, Secret)> {
        let project_id = self.managed(caller, project).await?;
        let mut violations = Violations::default();
        let types = violations.check(event_types(&new.event_types));
        let described = violations
            .check(description(&new.description).map_err(|e| FieldViolation::new("description", e.to_string())));
        let limit = violations.check(rate_limit(new.rate_limit));
        // The URL last: its check may ask DNS, which is not worth it for a request refused anyway.
        let target = if violations.is_empty() { violations.check(self.target(&new.url).await) } else { None };
        violations.into_result()?;
        let (Some(types), Some(described), Some(limit), Some(target)) = (types, described, limit, target) else {
            return Err(AppError::internal(anyhow::anyhow!("a checked field is missing")));
        };
        let endpoint = Endpoint {
            id: Uuid::now_v7(),
            project_id,
            url: target.as_str().to_owned(),
            description: described,
            event_types: types.as_slice().to_vec(),
            active: new.active.unwrap_or(true),
            disabled_reason: None,
            rate_limit: limit,
            created_by: caller.user_id,
            created_at: now,
            updated_at: now,
            version: 1,
            secret_rotated_at: None,
        };
        let secret = fresh_secret();
        if !self.store.create(&endpoint, &target, &types, &secret, MAX_ENDPOINTS_PER_PROJECT).await? {
            return Err(AppError::Conflict(
                format!("a project has at most {MAX_ENDPOINTS_PER_PROJECT} webhooks").into(),
            ));
        }
        Ok((endpoint, secret))
    }

    /// A page of the project's endpoints, oldest first.
    ///
    /// # Errors
    ///
    /// As [`Self::create`] for the standing; `Invalid`/`BadRequest` for a bad limit or cursor.
    pub async fn list(&self, caller: Manager<'_>, project: &str, limit: i32, cursor: &str) -> Result<Page<Endpoint>> {
        let project_id = self.managed(caller, project).await?;
        let limit = ordo_page::limit(limit)?;
        let after = cursor::decode_key(cursor)?;
        let mut items = self.store.list(project_id, after, limit + 1).await?;
        Ok(page(&mut items, limit, |e| e.id))
    }

    /// One endpoint.
    ///
    /// # Errors
    ///
    /// As [`Self::create`] for the standing; `NotFound` for an endpoint not of the project.
    pub async fn get(&self, caller: Manager<'_>, project: &str, webhook: &str) -> Result<Endpoint> {
        let project_id = self.managed(caller, project).await?;
        self.endpoint(project_id, webhook).await
    }

    /// Changes the fields `update` names.
    ///
    /// # Errors
    ///
    /// As [`Self::get`]; `Invalid` naming each bad field; `VersionMismatch` when the endpoint is at
    /// another version than expected.
    pub async fn update(
        &self,
        caller: Manager<'_>,
        project: &str,
        webhook: &str,
        update: WebhookUpdate,
        now: OffsetDateTime,
    ) -> Result<Endpoint> {
        let project_id = self.managed(caller, project).await?;
        let webhook_id = id(webhook, "webhook")?;
        let mut violations = Violations::default();
        let mut change = EndpointChange {
            event_types: update.event_types.as_deref().and_then(|t| violations.check(event_types(t))),
            description: update.description.as_deref().and_then(|d| {
                violations.check(description(d).map_err(|e| FieldViolation::new("description", e.to_string())))
            }),
            rate_limit: update.rate_limit.and_then(|r| violations.check(rate_limit(r))),
            active: update.active,
            url: None,
        };
        if let Some(url) = &update.url
            && violations.is_empty()
        {
            change.url = violations.check(self.target(url).await);
        }
        violations.into_result()?;
        match self.store.update(project_id, webhook_id, &change, update.expected_version, now).await? {
            Ok(endpoint) => Ok(endpoint),
            Err(Refusal::NotFound) => Err(not_found()),
            Err(Refusal::Version(current)) => Err(version_mismatch(current)),
        }
    }

    /// Deletes an endpoint with its queue and log.
    ///
    /// # Errors
    ///
    /// As [`Self::update`].
    pub async fn delete(&self, caller: Manager<'_>, project: &str, webhook: &str, expected: Option<i64>) -> Result<()> {
        let project_id = self.managed(caller, project).await?;
        match self.store.delete(project_id, id(webhook, "webhook")?, expected).await? {
            Ok(()) => Ok(()),
            Err(Refusal::NotFound) => Err(not_found()),
            Err(Refusal::Version(current)) => Err(version_mismatch(current)),
        }
    }

    /// A new secret for the endpoint, shown this once; the one it replaces keeps signing beside it
    /// for a day.
    ///
    /// # Errors
    ///
    /// As [`Self::get`].
    pub async fn rotate(
        &self,
        caller: Manager<'_>,
        project: &str,
        webhook: &str,
        now: OffsetDateTime,
    ) -> Result<(Endpoint, Secret)> {
        let project_id = self.managed(caller, project).await?;
        let secret = fresh_secret();
        let endpoint =
            self.store.rotate(project_id, id(webhook, "webhook")?, &secret, now).await?.ok_or_else(not_found)?;
        Ok((endpoint, secret))
    }

    /// A page of the endpoint's log, newest first.
    ///
    /// # Errors
    ///
    /// As [`Self::list`], and `NotFound` for an endpoint not of the project.
    pub async fn attempts(
        &self,
        caller: Manager<'_>,
        project: &str,
        webhook: &str,
        limit: i32,
        cursor: &str,
    ) -> Result<Page<AttemptRecord>> {
        let project_id = self.managed(caller, project).await?;
        let limit = ordo_page::limit(limit)?;
        let before = cursor::decode_key(cursor)?;
        let endpoint = self.endpoint(project_id, webhook).await?;
        let mut items = self.store.attempts(endpoint.id, before, limit + 1).await?;
        Ok(page(&mut items, limit, |a| a.id))
    }

    /// Queues a delivery's event again, as a new delivery with the same message id.
    ///
    /// # Errors
    ///
    /// As [`Self::get`]; `NotFound` for a delivery not of the endpoint.
    pub async fn redeliver(
        &self,
        caller: Manager<'_>,
        project: &str,
        webhook: &str,
        delivery: &str,
        now: OffsetDateTime,
    ) -> Result<DeliveryInfo> {
        let project_id = self.managed(caller, project).await?;
        let endpoint = active(self.endpoint(project_id, webhook).await?)?;
        let delivery_id = id(delivery, "delivery")?;
        self.store
            .redeliver(endpoint.id, delivery_id, Uuid::now_v7(), now)
            .await?
            .ok_or_else(|| AppError::NotFound("no such delivery".into()))
    }

    /// Queues a `webhook.ping` to the endpoint.
    ///
    /// # Errors
    ///
    /// As [`Self::get`].
    pub async fn ping(
        &self,
        caller: Manager<'_>,
        project: &str,
        webhook: &str,
        now: OffsetDateTime,
    ) -> Result<DeliveryInfo> {
        let project_id = self.managed(caller, project).await?;
        let endpoint = active(self.endpoint(project_id, webhook).await?)?;
        self.store.ping(&endpoint, Uuid::now_v7(), now).await
    }
}

/// `endpoint`, when it is active: an inactive one is sent nothing.
fn active(endpoint: Endpoint) -> Result<Endpoint> {
    if endpoint.active {
        Ok(endpoint)
    } else {
        Err(AppError::Conflict("the webhook is not active; turn it on first".into()))
    }
}

impl WebhookService {
    /// Deletes log entries and finished deliveries older than `retention`, `batch` at a time (a
    /// short lock each) until none is left; how many went.
    ///
    /// # Errors
    ///
    /// What the store answers.
    pub async fn delete_expired(&self, now: OffsetDateTime, retention: time::Duration, batch: u32) -> Result<u64> {
        let mut deleted = 0;
        loop {
            let round = self.store.delete_before(now - retention, batch).await?;
            deleted += round;
            if round < u64::from(batch) {
                return Ok(deleted);
            }
        }
    }
}

fn version_mismatch(current: i64) -> AppError {
    AppError::VersionMismatch(format!("the webhook is at version {current}").into())
}

/// `items` (fetched `limit + 1`) cut to a page, with the cursor of the next when there is one.
fn page<T>(items: &mut Vec<T>, limit: u32, key: impl Fn(&T) -> Uuid) -> Page<T> {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more { items.last().map(|last| cursor::encode_key(key(last))) } else { None };
    Page { items: std::mem::take(items), next_cursor }
}
