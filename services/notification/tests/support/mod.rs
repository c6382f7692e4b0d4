//! The stack the notification service's tests run on, and what they do through it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ordo_harness::{Service, User, bearer};
use ordo_proto::notification::v1 as pb;
use ordo_proto::notification::v1::notification_service_client::NotificationServiceClient;
use ordo_proto::project::v1 as ppb;
use ordo_proto::project::v1::project_service_client::ProjectServiceClient;
use ordo_proto::task::v1 as tpb;
use ordo_proto::task::v1::task_service_client::TaskServiceClient;
use ordo_testkit::TestEnv;
use tonic::transport::Channel;

pub(crate) struct Stack {
    pub(crate) notifications: NotificationServiceClient<Channel>,
    pub(crate) projects: ProjectServiceClient<Channel>,
    pub(crate) tasks: TaskServiceClient<Channel>,
    pub(crate) processes: ordo_harness::Stack,
}

/// Identity, project, task and notification, the notification service with the harness's flags.
pub(crate) async fn spawn(env: &TestEnv) -> Stack {
    spawn_with(env, &[]).await
}

/// Identity, project, task and notification, the notification service with `notification_args` too.
pub(crate) async fn spawn_with(env: &TestEnv, notification_args: &[&str]) -> Stack {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,ordo=info").with_test_writer().try_init();
    let processes =
        ordo_harness::Stack::of([Service::Identity, Service::Project, Service::Task, Service::Notification])
            .args(Service::Identity, ["--hash-concurrency", "2"])
            // No object storage: nothing is uploaded.
            .args(Service::Task, ["--s3-endpoint", "http://127.0.0.1:9"])
            .args(Service::Notification, notification_args.iter().copied())
            .pool(Service::Notification)
            .start(env)
            .await;
    Stack {
        notifications: NotificationServiceClient::new(processes.channel(Service::Notification)),
        projects: ProjectServiceClient::new(processes.channel(Service::Project)),
        tasks: TaskServiceClient::new(processes.channel(Service::Task)),
        processes,
    }
}

impl Stack {
    /// A project of `owner` with `members` (as members).
    pub(crate) async fn project(&mut self, owner: &User, key: &str, members: &[&User]) -> String {
        let request =
            ppb::CreateProjectRequest { name: format!("Project {key}"), key: key.to_owned(), ..Default::default() };
        let project = self.projects.create_project(bearer(&owner.access_token, request)).await.unwrap();
        let project_id = project.into_inner().project.unwrap().id;
        for member in members {
            let request = ppb::AddMemberRequest {
                project_id: project_id.clone(),
                user_id: member.id.clone(),
                role: ppb::ProjectRole::Member.into(),
                client: None,
            };
            self.projects.add_member(bearer(&owner.access_token, request)).await.unwrap();
        }
        project_id
    }

    pub(crate) async fn task(&mut self, by: &User, project_id: &str, assignees: &[&User]) -> tpb::Task {
        let request = tpb::CreateTaskRequest {
            project_id: project_id.to_owned(),
            title: "Fix login".to_owned(),
            assignee_ids: assignees.iter().map(|user| user.id.clone()).collect(),
            ..Default::default()
        };
        self.tasks.create_task(bearer(&by.access_token, request)).await.unwrap().into_inner().task.unwrap()
    }

    pub(crate) async fn comment(&mut self, by: &User, task_id: &str, body: &str) {
        let request = tpb::AddCommentRequest { task_id: task_id.to_owned(), body: body.to_owned(), client: None };
        self.tasks.add_comment(bearer(&by.access_token, request)).await.unwrap();
    }

    pub(crate) async fn list(
        &mut self,
        user: &User,
        request: pb::ListNotificationsRequest,
    ) -> pb::ListNotificationsResponse {
        self.notifications.list_notifications(bearer(&user.access_token, request)).await.unwrap().into_inner()
    }

    /// `user`'s kinds of notification, newest first, once there are `count` of them.
    pub(crate) async fn kinds_once(&mut self, user: &User, count: usize) -> Vec<String> {
        for _ in 0..100 {
            let list = self.list(user, pb::ListNotificationsRequest::default()).await;
            if list.notifications.len() >= count {
                return list.notifications.into_iter().map(|n| n.kind).collect();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} did not get {count} notifications", user.id);
    }
}

impl Stack {
    /// Applies `patch` at `paths` to task `task_id` as `by`.
    pub(crate) async fn update(
        &mut self,
        by: &User,
        task_id: &str,
        patch: tpb::TaskPatch,
        paths: &[&str],
    ) -> tpb::Task {
        let request = tpb::UpdateTaskRequest {
            id: task_id.to_owned(),
            patch: Some(patch),
            update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
            ..Default::default()
        };
        self.tasks.update_task(bearer(&by.access_token, request)).await.unwrap().into_inner().task.unwrap()
    }
}

/// The mails sent to `to` once there are `count` of them; then a little longer, so a mail too many
/// would show.
pub(crate) async fn mails_once(to: &str, count: usize) -> Vec<ordo_testkit::SentMail> {
    ordo_testkit::mails_once(to, count).await.unwrap()
}

/// An address of this test's own (the mail stand-in is shared by every test).
pub(crate) fn address(env: &TestEnv, name: &str) -> String {
    format!("{name}-{}@example.com", env.id)
}

/// A migrated schema of the notification service (beside identity, whose keys its readiness needs)
/// and a pool on it, for tests at the store or the consumer's handler.
pub(crate) async fn schema(env: &TestEnv) -> (ordo_harness::Stack, sqlx::MySqlPool) {
    let processes = ordo_harness::Stack::of([Service::Identity, Service::Notification])
        .pool(Service::Notification)
        .start(env)
        .await;
    let pool = processes.pool(Service::Notification).clone();
    (processes, pool)
}
