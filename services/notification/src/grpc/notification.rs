//! The tonic server of `ordo.notification.v1.NotificationService`. Every call acts for its caller.

use std::collections::HashMap;

use std::pin::Pin;

use futures::{Stream, StreamExt as _};
use ordo_auth::caller;
use ordo_proto::notification::v1 as pb;
use ordo_proto::time::timestamp;
use ordo_service::status;
use pb::notification_service_server::NotificationService as NotificationRpc;
use time::OffsetDateTime;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::app::ports::Notification;
use crate::app::push::{PushService, PushTarget};
use crate::app::{DeliveryChange, NotificationService, Preferences, PreferencesUpdate, StreamItem};
use crate::domain::Channel;

/// The gRPC face of [`NotificationService`] and of the caller's push subscriptions.
#[derive(Debug, Clone)]
pub struct NotificationGrpc {
    service: NotificationService,
    push: PushService,
}

impl NotificationGrpc {
    /// Serves `service` and `push`.
    pub fn new(service: NotificationService, push: PushService) -> Self {
        Self { service, push }
    }
}

fn notification(n: Notification) -> pb::Notification {
    pb::Notification {
        id: n.id.to_string(),
        kind: n.draft.kind.as_str().to_owned(),
        title: n.draft.title,
        body: n.draft.body,
        project_id: n.draft.project_id.to_string(),
        task_id: n.draft.task_id.map(|id| id.to_string()).unwrap_or_default(),
        task_key: n.draft.task_key.unwrap_or_default(),
        actor_id: n.actor_id.map(|id| id.to_string()).unwrap_or_default(),
        created_at: Some(timestamp(n.created_at)),
        read_at: n.read_at.map(timestamp),
        seen_at: n.seen_at.map(timestamp),
        archived_at: n.archived_at.map(timestamp),
    }
}

fn preferences(found: &Preferences) -> pb::Preferences {
    let channel = |wanted: Channel| -> HashMap<String, bool> {
        found
            .kinds
            .iter()
            .filter(|((channel, _), _)| *channel == wanted)
            .map(|((_, kind), on)| (kind.as_str().to_owned(), *on))
            .collect()
    };
    let delivery = &found.email_delivery;
    pb::Preferences {
        in_app: channel(Channel::InApp),
        email: channel(Channel::Email),
        push: channel(Channel::Push),
        email_delivery: Some(pb::EmailDelivery {
            mode: delivery.mode.as_str().to_owned(),
            hour: u32::from(delivery.schedule.hour()),
            time_zone: delivery.schedule.time_zone().to_owned(),
            next_digest_at: delivery.next_digest_at.map(timestamp),
        }),
    }
}

fn stream_item(item: StreamItem) -> pb::StreamNotificationsResponse {
    use pb::stream_notifications_response::Event;
    let event = match item {
        StreamItem::Notification(n) => Event::Notification(notification(*n)),
        StreamItem::Counts(counts) => {
            Event::Counts(pb::Counts { unread_count: counts.unread, unseen_count: counts.unseen })
        }
        StreamItem::Job(progress) => Event::Job(pb::JobProgress {
            job_id: progress.job_id.to_string(),
            project_id: progress.project_id.to_string(),
            kind: progress.kind,
            rows_done: progress.rows_done,
            rows_total: progress.rows_total,
        }),
    };
    pb::StreamNotificationsResponse { event: Some(event) }
}

/// The items of a live stream, as the RPC sends them.
type ItemStream = Pin<Box<dyn Stream<Item = Result<pb::StreamNotificationsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl NotificationRpc for NotificationGrpc {
    type StreamNotificationsStream = ItemStream;

    async fn stream_notifications(
        &self,
        request: Request<pb::StreamNotificationsRequest>,
    ) -> Result<Response<Self::StreamNotificationsStream>, Status> {
        let caller = caller(&request)?;
        let (user, session) = (caller.user_id, caller.session_id);
        let items = self.service.stream(user, session, &request.get_ref().last_event_id).await.map_err(status)?;
        let stream = ReceiverStream::new(items).map(|item| item.map(stream_item).map_err(status));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let user = caller(&request)?.user_id;
        let r = request.into_inner();
        let page = r.page.unwrap_or_default();
        let page =
            self.service.list(user, r.unread_only, r.archived, page.limit, &page.cursor).await.map_err(status)?;
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications: page.notifications.into_iter().map(notification).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
            unread_count: page.counts.unread,
            unseen_count: page.counts.unseen,
        }))
    }

    async fn mark_seen(&self, request: Request<pb::MarkSeenRequest>) -> Result<Response<pb::MarkSeenResponse>, Status> {
        self.service.mark_seen(caller(&request)?.user_id).await.map_err(status)?;
        Ok(Response::new(pb::MarkSeenResponse {}))
    }

    async fn mark_read(&self, request: Request<pb::MarkReadRequest>) -> Result<Response<pb::MarkReadResponse>, Status> {
        let user = caller(&request)?.user_id;
        self.service.mark_read(user, &request.get_ref().id).await.map_err(status)?;
        Ok(Response::new(pb::MarkReadResponse {}))
    }

    async fn mark_all_read(
        &self,
        request: Request<pb::MarkAllReadRequest>,
    ) -> Result<Response<pb::MarkAllReadResponse>, Status> {
        self.service.mark_all_read(caller(&request)?.user_id).await.map_err(status)?;
        Ok(Response::new(pb::MarkAllReadResponse {}))
    }

    async fn archive_notification(
        &self,
        request: Request<pb::ArchiveNotificationRequest>,
    ) -> Result<Response<pb::ArchiveNotificationResponse>, Status> {
        let user = caller(&request)?.user_id;
        self.service.archive(user, &request.get_ref().id).await.map_err(status)?;
        Ok(Response::new(pb::ArchiveNotificationResponse {}))
    }

    async fn delete_notification(
        &self,
        request: Request<pb::DeleteNotificationRequest>,
    ) -> Result<Response<pb::DeleteNotificationResponse>, Status> {
        let user = caller(&request)?.user_id;
        self.service.delete(user, &request.get_ref().id).await.map_err(status)?;
        Ok(Response::new(pb::DeleteNotificationResponse {}))
    }

    async fn get_preferences(
        &self,
        request: Request<pb::GetPreferencesRequest>,
    ) -> Result<Response<pb::Preferences>, Status> {
        let found = self.service.preferences(caller(&request)?.user_id).await.map_err(status)?;
        Ok(Response::new(preferences(&found)))
    }

    async fn update_preferences(
        &self,
        request: Request<pb::UpdatePreferencesRequest>,
    ) -> Result<Response<pb::Preferences>, Status> {
        let user = caller(&request)?.user_id;
        let r = request.into_inner();
        let update = PreferencesUpdate {
            in_app: r.in_app,
            email: r.email,
            push: r.push,
            email_delivery: r.email_delivery.map(|change| DeliveryChange {
                mode: change.mode,
                hour: change.hour,
                time_zone: change.time_zone,
            }),
        };
        let found = self.service.update_preferences(user, &update, OffsetDateTime::now_utc()).await.map_err(status)?;
        Ok(Response::new(preferences(&found)))
    }

    async fn get_push_key(&self, _request: Request<pb::GetPushKeyRequest>) -> Result<Response<pb::PushKey>, Status> {
        let public_key = self.push.public_key().map_err(status)?;
        Ok(Response::new(pb::PushKey { public_key }))
    }

    async fn subscribe_push(
        &self,
        request: Request<pb::SubscribePushRequest>,
    ) -> Result<Response<pb::PushSubscription>, Status> {
        let user = caller(&request)?.user_id;
        let r = request.into_inner();
        let target = PushTarget { endpoint: r.endpoint, p256dh: r.p256dh, auth: r.auth };
        let stored = self.push.subscribe(user, target, OffsetDateTime::now_utc()).await.map_err(status)?;
        Ok(Response::new(pb::PushSubscription {
            id: stored.id.to_string(),
            endpoint: stored.endpoint,
            created_at: Some(timestamp(stored.created_at)),
        }))
    }

    async fn unsubscribe_push(
        &self,
        request: Request<pb::UnsubscribePushRequest>,
    ) -> Result<Response<pb::UnsubscribePushResponse>, Status> {
        let user = caller(&request)?.user_id;
        self.push.unsubscribe(user, &request.get_ref().endpoint).await.map_err(status)?;
        Ok(Response::new(pb::UnsubscribePushResponse {}))
    }
}
