//! What the task service's integration tests share: the identity, project and task services of one
//! test on real MariaDB, Redis, RabbitMQ and S3, and small helpers to drive them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ordo_harness::Service;
use ordo_proto::events::v1::Envelope;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use ordo_proto::project::v1 as ppb;
use ordo_proto::project::v1::project_service_client::ProjectServiceClient;
use ordo_proto::task::v1 as pb;
use ordo_proto::task::v1::task_service_client::TaskServiceClient;
use ordo_testkit::TestEnv;
use prost::Message as _;
use sqlx::MySqlPool;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

/// Identity, project and task services of one test.
pub(crate) struct Stack {
    pub(crate) identity: IdentityServiceClient<Channel>,
    pub(crate) projects: ProjectServiceClient<Channel>,
    pub(crate) tasks: TaskServiceClient<Channel>,
    /// The task service's /healthz, /readyz and /metrics.
    pub(crate) task_ops: std::net::SocketAddr,
    /// The task service's own schema, to look behind its back.
    pub(crate) db: MySqlPool,
    /// The object store, to look behind the service's back, and the test's bucket.
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) bucket: String,
    pub(crate) processes: Option<ordo_harness::Stack>,
}

/// Credentials of the local S3-compatible server (it accepts any).
pub(crate) const S3_KEY: &str = "ordo-test";
/// The attachment size limit of the tests' task service.
pub(crate) const MAX_ATTACHMENT: u64 = 12 * 1024 * 1024;

pub(crate) fn s3_client() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(S3_KEY, S3_KEY, None, None, "tests"))
        .endpoint_url(ordo_testkit::s3_endpoint())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

#[derive(Clone)]
pub(crate) struct User {
    pub(crate) id: Uuid,
    pub(crate) token: String,
}

pub(crate) fn client_info() -> Option<pb::ClientInfo> {
    Some(pb::ClientInfo { ip: "203.0.113.7".into(), user_agent: "task-tests/1.0".into() })
}

pub(crate) fn as_user<T>(user: &User, message: T) -> tonic::Request<T> {
    ordo_harness::bearer(&user.token, message)
}

pub(crate) fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}")).unwrap().connect_lazy()
}

pub(crate) async fn spawn(env: &TestEnv) -> Stack {
    spawn_with(env, &["--job-poll-ms", "100"]).await
}

/// [`spawn`], with `extra` arguments for the task service.
pub(crate) async fn spawn_with(env: &TestEnv, extra: &[&str]) -> Stack {
    let processes = processes([Service::Identity, Service::Project, Service::Task], extra).start(env).await;
    Stack::of(env, processes)
}

/// [`spawn_with`], behind the gateway: the audit and notification services and the gateway join the
/// stack, the gateway's budgets far beyond what a test spends ([`Stack::gateway`]).
pub(crate) async fn spawn_behind_gateway(env: &TestEnv, extra: &[&str]) -> Stack {
    let services =
        [Service::Identity, Service::Project, Service::Task, Service::Audit, Service::Notification, Service::Gateway];
    let budgets =
        ["read", "write", "costly", "credentials", "email-lookup"].map(|b| format!("--rate-limit-{b}=1000000"));
    let processes = processes(services, extra).args(Service::Gateway, budgets).start(env).await;
    Stack::of(env, processes)
}

/// `services`, the task service with the tests' flags and `extra`, and a pool on its schema.
fn processes(services: impl IntoIterator<Item = Service>, extra: &[&str]) -> ordo_harness::StackBuilder {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,ordo=info").with_test_writer().try_init();
    ordo_harness::Stack::of(services)
        .args(Service::Identity, ["--hash-concurrency", "2"])
        .args(Service::Task, extra.iter().copied())
        .args(
            Service::Task,
            [
                "--max-attachment-bytes".to_owned(),
                MAX_ATTACHMENT.to_string(),
                "--object-sweep-secs".to_owned(),
                "1".to_owned(),
                "--word-index-secs".to_owned(),
                "1".to_owned(),
                // Long enough that only the events' invalidation can make a change of access show.
                "--access-cache-ttl-ms".to_owned(),
                "600000".to_owned(),
            ],
        )
        .pool(Service::Task)
}

impl Stack {
    /// Clients of `processes`, started for `env`.
    fn of(env: &TestEnv, processes: ordo_harness::Stack) -> Self {
        Self {
            identity: IdentityServiceClient::new(processes.channel(Service::Identity)),
            projects: ProjectServiceClient::new(processes.channel(Service::Project)),
            tasks: TaskServiceClient::new(processes.channel(Service::Task)),
            task_ops: processes.ops_addr(Service::Task),
            db: processes.pool(Service::Task).clone(),
            s3: s3_client(),
            bucket: env.bucket(),
            processes: Some(processes),
        }
    }

    /// `http://<addr>/api/v1` of the gateway of a stack [`spawn_behind_gateway`] started.
    pub(crate) fn gateway(&self) -> String {
        format!("{}/api/v1", self.processes.as_ref().expect("a running stack").url(Service::Gateway))
    }
}

pub(crate) fn new_task(project: &str, title: &str) -> pb::CreateTaskRequest {
    pb::CreateTaskRequest {
        project_id: project.to_owned(),
        title: title.to_owned(),
        client: client_info(),
        ..Default::default()
    }
}

pub(crate) fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

pub(crate) fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// The fields named by the `BadRequest` details of an `InvalidArgument` status.
pub(crate) fn bad_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = tonic_types::StatusExt::get_error_details(status);
    details.bad_request().map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect()).unwrap_or_default()
}

impl Stack {
    pub(crate) async fn user(&mut self, email: &str) -> User {
        let signed_up = self.processes.as_ref().expect("the stack runs").sign_up(email).await;
        let user = User { id: signed_up.id.parse().unwrap(), token: signed_up.access_token };
        // The services may still be starting (migrations, identity's keys).
        for _ in 0..150 {
            let projects = self.projects.list_projects(as_user(&user, ppb::ListProjectsRequest::default())).await;
            let tasks = self
                .tasks
                .get_task(as_user(&user, pb::GetTaskRequest { id: Uuid::now_v7().to_string() }))
                .await
                .err()
                .map(|s| s.code());
            if projects.is_ok() && tasks == Some(Code::NotFound) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        user
    }

    pub(crate) async fn project(&mut self, owner: &User, key: &str) -> String {
        let request = ppb::CreateProjectRequest {
            name: format!("Project {key}"),
            key: key.to_owned(),
            description: None,
            client: None,
        };
        self.projects.create_project(as_user(owner, request)).await.unwrap().into_inner().project.unwrap().id
    }

    pub(crate) async fn add(&mut self, by: &User, project: &str, user: &User, role: ppb::ProjectRole) {
        let request = ppb::AddMemberRequest {
            project_id: project.to_owned(),
            user_id: user.id.to_string(),
            role: role.into(),
            client: None,
        };
        self.projects.add_member(as_user(by, request)).await.unwrap();
    }

    pub(crate) async fn create(&mut self, by: &User, request: pb::CreateTaskRequest) -> pb::Task {
        self.tasks.create_task(as_user(by, request)).await.unwrap().into_inner().task.unwrap()
    }

    pub(crate) async fn get(&mut self, by: &User, id: &str) -> Result<pb::Task, tonic::Status> {
        self.tasks
            .get_task(as_user(by, pb::GetTaskRequest { id: id.to_owned() }))
            .await
            .map(|r| r.into_inner().task.unwrap())
    }

    pub(crate) async fn update(
        &mut self,
        by: &User,
        id: &str,
        patch: pb::TaskPatch,
        paths: &[&str],
        expected_version: Option<i64>,
    ) -> Result<pb::Task, tonic::Status> {
        let request = pb::UpdateTaskRequest {
            id: id.to_owned(),
            patch: Some(patch),
            update_mask: mask(paths),
            expected_version,
            client: client_info(),
        };
        self.tasks.update_task(as_user(by, request)).await.map(|r| r.into_inner().task.unwrap())
    }

    pub(crate) async fn move_task(
        &mut self,
        by: &User,
        id: &str,
        after: Option<&str>,
        before: Option<&str>,
    ) -> Result<pb::Task, tonic::Status> {
        let request = pb::MoveTaskRequest {
            id: id.to_owned(),
            after_id: after.map(str::to_owned),
            before_id: before.map(str::to_owned),
            expected_version: None,
            client: client_info(),
        };
        self.tasks.move_task(as_user(by, request)).await.map(|r| r.into_inner().task.unwrap())
    }

    /// Every page of a list, walked with `limit`.
    pub(crate) async fn list_all(&mut self, by: &User, mut request: pb::ListTasksRequest, limit: i32) -> Vec<pb::Task> {
        request.page = Some(pb::PageRequest { limit, ..Default::default() });
        let mut all = Vec::new();
        for _ in 0..200 {
            let page = self.tasks.list_tasks(as_user(by, request.clone())).await.unwrap().into_inner();
            assert!(page.tasks.len() <= limit as usize);
            all.extend(page.tasks);
            if page.next_cursor.is_empty() {
                return all;
            }
            request.page = Some(pb::PageRequest { limit, cursor: page.next_cursor });
        }
        panic!("the list never ended");
    }

    /// The task service's outbox, decoded, in order.
    pub(crate) async fn outbox(&self) -> Vec<Envelope> {
        let rows: Vec<(Vec<u8>,)> =
            sqlx::query_as("SELECT payload FROM outbox_event ORDER BY id").fetch_all(&self.db).await.unwrap();
        rows.into_iter().map(|(bytes,)| Envelope::decode(&bytes[..]).unwrap()).collect()
    }

    /// The keys in the test's bucket.
    pub(crate) async fn objects(&self) -> Vec<String> {
        let listed = self.s3.list_objects_v2().bucket(&self.bucket).send().await;
        match listed {
            Ok(listed) => listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect(),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_bucket()) => Vec::new(),
            Err(error) => panic!("list the bucket: {error:?}"),
        }
    }

    /// Uploads `bytes` as `filename` in chunks of 64 KiB.
    pub(crate) async fn upload(
        &mut self,
        by: &User,
        task_id: &str,
        filename: &str,
        bytes: &[u8],
    ) -> Result<pb::Attachment, tonic::Status> {
        use pb::upload_attachment_request::Part;
        let header = pb::AttachmentHeader {
            task_id: task_id.to_owned(),
            filename: filename.to_owned(),
            content_type: "application/pdf".to_owned(),
            client: client_info(),
        };
        let mut messages = vec![pb::UploadAttachmentRequest { part: Some(Part::Header(header)) }];
        messages.extend(
            bytes
                .chunks(64 * 1024)
                .map(|chunk| pb::UploadAttachmentRequest { part: Some(Part::Chunk(chunk.to_vec())) }),
        );
        messages.push(pb::UploadAttachmentRequest {
            part: Some(Part::End(pb::UploadEnd { size_bytes: bytes.len() as i64 })),
        });
        let response = self.tasks.upload_attachment(as_user(by, futures::stream::iter(messages))).await?;
        Ok(response.into_inner().attachment.unwrap())
    }

    pub(crate) async fn stop(mut self) {
        if let Some(processes) = self.processes.take() {
            processes.stop().await.unwrap();
        }
        // The bucket goes with the test (emptied first: tests that check for leftovers do so before).
        let keys = self.objects().await;
        for key in keys {
            self.s3.delete_object().bucket(&self.bucket).key(key).send().await.unwrap();
        }
        let _ = self.s3.delete_bucket().bucket(&self.bucket).send().await;
    }
}

/// Waits until `check` holds, or fails after 20 s.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
