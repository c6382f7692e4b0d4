//! The project and task services, called directly (not through the gateway), refuse a token whose
//! session has ended, accept a live one, and serve no reflection unless asked to.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use ordo_harness::{PASSWORD, Service, bearer};
use ordo_proto::identity::v1 as idpb;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use ordo_proto::project::v1 as ppb;
use ordo_proto::project::v1::project_service_client::ProjectServiceClient;
use ordo_proto::task::v1 as tpb;
use ordo_proto::task::v1::task_service_client::TaskServiceClient;
use ordo_testkit::TestEnv;
use tonic::transport::Channel;

struct Stack {
    identity: IdentityServiceClient<Channel>,
    project: SocketAddr,
    task: SocketAddr,
    processes: ordo_harness::Stack,
}

impl Stack {
    async fn stop(self) {
        self.processes.stop().await.unwrap();
    }

    async fn list_projects(&self, token: &str) -> Result<(), tonic::Status> {
        let mut client = ProjectServiceClient::new(channel(self.project));
        client.list_projects(bearer(token, ppb::ListProjectsRequest::default())).await.map(drop)
    }

    async fn get_task(&self, token: &str) -> Result<(), tonic::Status> {
        let mut client = TaskServiceClient::new(channel(self.task));
        let request = tpb::GetTaskRequest { id: uuid::Uuid::now_v7().to_string() };
        client.get_task(bearer(token, request)).await.map(drop)
    }
}

fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}")).unwrap().connect_lazy()
}

async fn spawn(env: &TestEnv) -> Stack {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,ordo=info").with_test_writer().try_init();
    // Ready when project and task answer a call with something other than "unavailable".
    let processes = ordo_harness::Stack::of([Service::Identity, Service::Project, Service::Task])
        .args(Service::Identity, ["--hash-concurrency", "2"])
        // No object storage: these tests upload nothing, and an unreachable endpoint leaves no bucket behind.
        .args(Service::Task, ["--s3-endpoint", "http://127.0.0.1:9"])
        .start(env)
        .await;
    Stack {
        identity: IdentityServiceClient::new(processes.channel(Service::Identity)),
        project: processes.addr(Service::Project),
        task: processes.addr(Service::Task),
        processes,
    }
}

fn code(result: Result<(), tonic::Status>) -> tonic::Code {
    result.err().map_or(tonic::Code::Ok, |status| status.code())
}

#[tokio::test]
async fn project_and_task_refuse_a_token_whose_session_was_logged_out() {
    // Arrange: a live token is accepted by both.
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let token = stack.processes.sign_up("leaver@example.com").await.access_token;
    let other = stack.identity.login(idpb::LoginRequest {
        email: "leaver@example.com".to_owned(),
        password: PASSWORD.to_owned(),
        client: None,
    });
    let other = other.await.unwrap().into_inner().tokens.unwrap().access_token;
    assert_eq!(code(stack.list_projects(&token).await), tonic::Code::Ok);
    assert_ne!(code(stack.get_task(&token).await), tonic::Code::Unauthenticated);

    // Act: the session ends; a live answer is trusted for at most the session cache time (1 s).
    stack.identity.logout(bearer(&token, idpb::LogoutRequest { client: None })).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let project = stack.list_projects(&token).await;
    let task = stack.get_task(&token).await;

    // Assert: refused by both; the user's other session still works.
    assert_eq!(code(project), tonic::Code::Unauthenticated);
    assert_eq!(code(task), tonic::Code::Unauthenticated);
    assert_eq!(code(stack.list_projects(&other).await), tonic::Code::Ok);
    assert_ne!(code(stack.get_task(&other).await), tonic::Code::Unauthenticated);
    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn project_and_task_serve_no_reflection_by_default() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    let env = TestEnv::new();
    let stack = spawn(&env).await;

    let mut codes = Vec::new();
    for addr in [stack.project, stack.task] {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let answer =
            ServerReflectionClient::new(channel(addr)).server_reflection_info(tokio_stream::iter([request])).await;
        codes.push(answer.err().map(|status| status.code()));
    }

    assert_eq!(codes, [Some(tonic::Code::Unimplemented), Some(tonic::Code::Unimplemented)]);
    stack.stop().await;
    env.cleanup().await.unwrap();
}
