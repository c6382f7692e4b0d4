//! The tonic server of `ordo.notification.v1.WebhookService`: every call acts for a caller who
//! manages the project, which the use cases check first.

use ordo_auth::{authorization, caller};
use ordo_proto::notification::v1 as pb;
use ordo_proto::time::timestamp;
use ordo_service::status;
use pb::webhook_service_server::WebhookService as WebhookRpc;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use crate::app::webhook_ports::{AttemptRecord, DeliveryInfo, Endpoint};
use crate::app::{Manager, NewWebhook, WebhookService, WebhookUpdate};
use crate::domain::webhook::Secret;

/// The gRPC face of [`WebhookService`].
#[derive(Debug, Clone)]
pub struct WebhookGrpc {
    service: WebhookService,
}

impl WebhookGrpc {
    /// Serves `service`.
    pub fn new(service: WebhookService) -> Self {
        Self { service }
    }
}

fn webhook(e: Endpoint) -> pb::Webhook {
    pb::Webhook {
        id: e.id.to_string(),
        project_id: e.project_id.to_string(),
        url: e.url,
        description: e.description,
        event_types: e.event_types,
        active: e.active,
        disabled_reason: e.disabled_reason.map(|r| r.as_str().to_owned()).unwrap_or_default(),
        rate_limit: e.rate_limit,
        created_by: e.created_by.to_string(),
        created_at: Some(timestamp(e.created_at)),
        updated_at: Some(timestamp(e.updated_at)),
        version: e.version,
        secret_rotated_at: e.secret_rotated_at.map(timestamp),
    }
}

fn attempt(a: AttemptRecord) -> pb::WebhookAttempt {
    pb::WebhookAttempt {
        id: a.id.to_string(),
        delivery_id: a.delivery_id.to_string(),
        message_id: a.message_id.to_string(),
        event_type: a.event_type,
        attempt: a.attempt,
        attempted_at: Some(timestamp(a.attempted_at)),
        outcome: a.outcome.as_str().to_owned(),
        status_code: a.status_code.map(u32::from).unwrap_or_default(),
        latency_ms: a.latency_ms,
        response_excerpt: a.excerpt,
    }
}

fn delivery(d: DeliveryInfo) -> pb::WebhookDelivery {
    pb::WebhookDelivery {
        id: d.id.to_string(),
        message_id: d.message_id.to_string(),
        event_type: d.event_type,
        state: d.state.as_str().to_owned(),
        attempts: d.attempts,
        created_at: Some(timestamp(d.created_at)),
        next_attempt_at: d.next_attempt_at.map(timestamp),
    }
}

fn secret(s: &Secret) -> String {
    s.expose()
}

/// The caller of `request` and its credential.
fn manager<T>(request: &Request<T>) -> Result<(uuid::Uuid, String), Status> {
    Ok((caller(request)?.user_id, authorization(request)?))
}

#[tonic::async_trait]
impl WebhookRpc for WebhookGrpc {
    async fn create_webhook(
        &self,
        request: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::CreateWebhookResponse>, Status> {
        let (user_id, authorization) = manager(&request)?;
        let r = request.into_inner();
        let new = NewWebhook {
            url: r.url,
            description: r.description,
            event_types: r.event_types,
            active: r.active,
            rate_limit: r.rate_limit,
        };
        let caller = Manager { user_id, authorization: &authorization };
        let (endpoint, key) =
            self.service.create(caller, &r.project_id, new, OffsetDateTime::now_utc()).await.map_err(status)?;
        Ok(Response::new(pb::CreateWebhookResponse { webhook: Some(webhook(endpoint)), secret: secret(&key) }))
    }

    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        let (user_id, authorization) = manager(&request)?;
        let r = request.into_inner();
        let page = r.page.unwrap_or_default();
        let caller = Manager { user_id, authorization: &authorization };
        let found = self.service.list(caller, &r.project_id, page.limit, &page.cursor).await.map_err(status)?;
        Ok(Response::new(pb::ListWebhooksResponse {
            webhooks: found.items.into_iter().map(webhook).collect(),
            next_cursor: found.next_cursor.unwrap_or_default(),
        }))
    }

    async fn get_webhook(&self, request: Request<pb::GetWebhookRequest>) -> Result<Response<pb::Webhook>, Status> {
        let (user_id, authorization) = manager(&request)?;
        let r = request.get_ref();
        let caller = Manager { user_id, authorization: &authorization };
        let endpoint = self.service.get(caller, &r.project_id, &r.webhook_id).await.map_err(status)?;
        Ok(Response::new(webhook(endpoint)))
    }

    async fn update_webhook(
        &self,
        request: Request<pb::UpdateWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        let (user_id, authorization) = manager(&request)?;
        let r = request.into_inner();
        let update = WebhookUpdate {
            url: r.url,
            description: r.description,
            event_types: r.event_types.map(|t| t.event_types),
            active: r.active,
            rate_limit: r.rate_limit,
            expected_version: r.expected_version,
        };
        let caller = Manager { user_id, authorization: &authorization };
        let endpoint = self
            .service
            .update(caller, &r.project_id, &r.webhook_id, update, OffsetDateTime::now_utc())
            .await
            .map_err(status)?;
        Ok(Response::new(webhook(endpoint)))
    }

    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, Status> {
        let (user_id, authorization) = manager(&request)?;
        let r = request.get_ref();
        let caller = Manager { user_id, authorization: &authorization };
        self.service.delete(caller, &r.project_id, &r.webhook_id, r.expected_version).await.map_err(status)?;
        Ok(Response::new(pb::DeleteWebhookResponse {}))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
        let (user_id, authorization) = manager(&request)?;
        let r = request.get_ref();
        let caller = Manager { user_id, authorization: &authorization };
        let (endpoint, key) = self
            .service
            .rotate(caller, &r.project_id, &r.webhook_id, OffsetDateTime::now_utc())
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RotateWebhookSecretResponse { webhook: Some(webhook(endpoint)), secret: secret(&key) }))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::ListWebhookDeliveriesResponse>, Status> {
        let (user_id, authorization) = manager(&request)?;
        let r = request.into_inner();
        let page = r.page.unwrap_or_default();
        let caller = Manager { user_id, authorization: &authorization };
        let found = self
            .service
            .attempts(caller, &r.project_id, &r.webhook_id, page.limit, &page.cursor)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListWebhookDeliveriesResponse {
            attempts: found.items.into_iter().map(attempt).collect(),
            next_cursor: found.next_cursor.unwrap_or_default(),
        }))
    }

    async fn redeliver_webhook(
        &self,
        request: Request<pb::RedeliverWebhookRequest>,
    ) -> Result<Response<pb::WebhookDelivery>, Status> {
        let (user_id, authorization) = manager(&request)?;
        let r = request.get_ref();
        let caller = Manager { user_id, authorization: &authorization };
        let queued = self
            .service
            .redeliver(caller, &r.project_id, &r.webhook_id, &r.delivery_id, OffsetDateTime::now_utc())
            .await
            .map_err(status)?;
        Ok(Response::new(delivery(queued)))
    }

    async fn ping_webhook(
        &self,
        request: Request<pb::PingWebhookRequest>,
    ) -> Result<Response<pb::WebhookDelivery>, Status> {
        let (user_id, authorization) = manager(&request)?;
        let r = request.get_ref();
        let caller = Manager { user_id, authorization: &authorization };
        let queued =
            self.service.ping(caller, &r.project_id, &r.webhook_id, OffsetDateTime::now_utc()).await.map_err(status)?;
        Ok(Response::new(delivery(queued)))
    }
}
