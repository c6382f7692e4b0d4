//! The audit service, called directly (not through the gateway), refuses a token whose session has
//! ended, accepts a live one, and serves no reflection unless asked to.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use ordo_harness::{Service, bearer};
use ordo_proto::audit::v1 as apb;
use ordo_proto::audit::v1::audit_service_client::AuditServiceClient;
use ordo_proto::identity::v1 as idpb;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use ordo_testkit::TestEnv;
use tonic::transport::Channel;

struct Stack {
    identity: IdentityServiceClient<Channel>,
    audit: SocketAddr,
    processes: ordo_harness::Stack,
}

impl Stack {
    async fn stop(self) {
        self.processes.stop().await.unwrap();
    }

    async fn list_records(&self, token: &str) -> Result<(), tonic::Status> {
        let mut client = AuditServiceClient::new(channel(self.audit));
        client.list_records(bearer(token, apb::ListRecordsRequest::default())).await.map(drop)
    }
}

fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}")).unwrap().connect_lazy()
}

async fn spawn(env: &TestEnv) -> Stack {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,ordo=info").with_test_writer().try_init();
    // Ready when audit answers a call with something other than "unavailable".
    let processes = ordo_harness::Stack::of([Service::Identity, Service::Audit])
        .args(Service::Identity, ["--hash-concurrency", "2"])
        .start(env)
        .await;
    Stack {
        identity: IdentityServiceClient::new(processes.channel(Service::Identity)),
        audit: processes.addr(Service::Audit),
        processes,
    }
}

fn code(result: Result<(), tonic::Status>) -> tonic::Code {
    result.err().map_or(tonic::Code::Ok, |status| status.code())
}

#[tokio::test]
async fn audit_refuses_a_token_whose_session_was_logged_out() {
    // Arrange: the first account is an admin, whose token lists the log.
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let token = stack.processes.sign_up("auditor@example.com").await.access_token;
    assert_eq!(code(stack.list_records(&token).await), tonic::Code::Ok);

    // Act: the session ends; a live answer is trusted for at most the session cache time (1 s).
    stack.identity.logout(bearer(&token, idpb::LogoutRequest { client: None })).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refused = stack.list_records(&token).await;

    // Assert
    assert_eq!(code(refused), tonic::Code::Unauthenticated);
    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn audit_serves_no_reflection_by_default() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    let env = TestEnv::new();
    let stack = spawn(&env).await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };

    let answer =
        ServerReflectionClient::new(channel(stack.audit)).server_reflection_info(tokio_stream::iter([request])).await;

    assert_eq!(answer.err().map(|status| status.code()), Some(tonic::Code::Unimplemented));
    stack.stop().await;
    env.cleanup().await.unwrap();
}
