//! Identity refuses a token whose session has ended even when called directly, keeps a hot session's
//! check in memory, serves reflection only when asked to, and stays bounded through a Redis outage
//! (Redis taken away through a proxy, never stopped: other tests share it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ordo_harness::{Service, Stack};
use ordo_proto::identity::v1 as pb;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use ordo_testkit::{TcpProxy, TestEnv};
use tonic::transport::Channel;

const PASSWORD: &str = "correct horse battery staple";

struct Identity {
    client: IdentityServiceClient<Channel>,
    channel: Channel,
    ops: SocketAddr,
    stack: Stack,
}

impl Identity {
    async fn stop(self) {
        self.stack.stop().await.unwrap();
    }

    /// Registers `email` and logs it in; the access token.
    async fn signed_up(&mut self, email: &str) -> String {
        let register = pb::RegisterRequest {
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
            display_name: "Someone".to_owned(),
            client: None,
        };
        self.client.register(register).await.unwrap();
        self.login(email).await.unwrap().access_token
    }

    async fn login(&mut self, email: &str) -> Result<pb::TokenPair, tonic::Status> {
        let request = pb::LoginRequest { email: email.to_owned(), password: PASSWORD.to_owned(), client: None };
        Ok(self.client.login(request).await?.into_inner().tokens.unwrap())
    }

    async fn get_me(&mut self, access_token: &str) -> Result<pb::GetMeResponse, tonic::Status> {
        Ok(self.client.get_me(authorized(pb::GetMeRequest {}, access_token)).await?.into_inner())
    }
}

fn authorized<T>(message: T, access_token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {access_token}").parse().unwrap());
    request
}

async fn spawn(env: &TestEnv, extra: &[&str]) -> Identity {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,ordo=info").with_test_writer().try_init();
    let stack = Stack::of([Service::Identity])
        .args(Service::Identity, ["--hash-concurrency", "2"])
        .args(Service::Identity, extra.iter().copied())
        .start(env)
        .await;
    let channel = stack.channel(Service::Identity);
    let client = IdentityServiceClient::new(channel.clone());
    Identity { client, channel, ops: stack.ops_addr(Service::Identity), stack }
}

async fn set_session_marker(env: &TestEnv, access_token: &str, value: &str) {
    let claims = access_token.split('.').nth(1).unwrap();
    let claims = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
    let key = format!("{}session:{}", env.redis_prefix(), claims["sid"].as_str().unwrap());
    let client = redis::Client::open(ordo_testkit::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("SET").arg(key).arg(value).query_async::<()>(&mut conn).await.unwrap();
}

#[tokio::test]
async fn a_logged_out_token_is_refused_by_identity_called_directly() {
    // Arrange
    let env = TestEnv::new();
    let mut identity = spawn(&env, &[]).await;
    let token = identity.signed_up("leaver@example.com").await;
    let other = identity.login("leaver@example.com").await.unwrap().access_token;
    identity.get_me(&token).await.unwrap();

    // Act: logging out ends the session; a live answer is trusted for at most the session cache time.
    identity.client.logout(authorized(pb::LogoutRequest { client: None }, &token)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refused = identity.get_me(&token).await;

    // Assert
    assert_eq!(refused.unwrap_err().code(), tonic::Code::Unauthenticated);
    identity.get_me(&other).await.unwrap();
    identity.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_hot_session_is_answered_from_memory_without_reading_redis() {
    // Arrange: a session checked once, then marked revoked behind the memory's back.
    let env = TestEnv::new();
    let mut identity = spawn(&env, &["--session-cache-ms", "3000"]).await;
    let token = identity.signed_up("hot@example.com").await;
    identity.get_me(&token).await.unwrap();
    set_session_marker(&env, &token, "0").await;

    // Act
    let remembered = identity.get_me(&token).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let looked_up = identity.get_me(&token).await;

    // Assert: within the cache time no Redis read happened (it would have said revoked); after it one did.
    remembered.unwrap();
    assert_eq!(looked_up.unwrap_err().code(), tonic::Code::Unauthenticated);
    identity.stop().await;
    env.cleanup().await.unwrap();
}

async fn reflection_answer(channel: Channel) -> Result<(), tonic::Status> {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, server_reflection_response::MessageResponse};
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream =
        ServerReflectionClient::new(channel).server_reflection_info(tokio_stream::iter([request])).await?.into_inner();
    match stream.message().await?.and_then(|r| r.message_response) {
        Some(MessageResponse::ListServicesResponse(_)) => Ok(()),
        other => Err(tonic::Status::internal(format!("unexpected answer {other:?}"))),
    }
}

#[tokio::test]
async fn reflection_is_off_unless_asked_for() {
    let env = TestEnv::new();
    let default = spawn(&env, &[]).await;
    let env_on = TestEnv::new();
    let with_flag = spawn(&env_on, &["--grpc-reflection"]).await;

    let off = reflection_answer(default.channel.clone()).await;
    let on = reflection_answer(with_flag.channel.clone()).await;

    assert_eq!(off.unwrap_err().code(), tonic::Code::Unimplemented);
    on.unwrap();
    default.stop().await;
    with_flag.stop().await;
    env.cleanup().await.unwrap();
    env_on.cleanup().await.unwrap();
}

/// Takes Redis away with `cut`, checks that identity stays bounded, gives it back, checks recovery.
async fn survives_a_redis_outage(cut: fn(&TcpProxy)) {
    // Arrange: identity talks to Redis through the proxy.
    let env = TestEnv::new();
    let proxy = TcpProxy::redis().await.unwrap();
    let redis_url = proxy.redis_url();
    let mut identity = spawn(&env, &["--redis-url", &redis_url]).await;
    identity.signed_up("steady@example.com").await;

    // Act: Redis goes away.
    cut(&proxy);
    let started = Instant::now();
    let (status, body) = ordo_testkit::http_get(identity.ops, "/readyz").await.unwrap();
    let readyz_took = started.elapsed();
    let started = Instant::now();
    let login = identity.login("steady@example.com").await;
    let login_took = started.elapsed();

    // Assert: both answer at once, and say why.
    assert!(readyz_took < Duration::from_secs(1), "/readyz took {readyz_took:?}");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("redis"), "{body}");
    assert!(login_took < Duration::from_millis(1500), "the login took {login_took:?}");
    assert_eq!(login.unwrap_err().code(), tonic::Code::Unavailable);

    // Act: Redis comes back.
    proxy.restore();
    let restored = Instant::now();
    let mut recovered = false;
    while restored.elapsed() < Duration::from_secs(5) {
        let (status, _) = ordo_testkit::http_get(identity.ops, "/readyz").await.unwrap();
        if status == 200 && identity.login("steady@example.com").await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert
    assert!(recovered, "identity did not recover within 5 s of Redis's return");
    identity.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn with_redis_refusing_readyz_and_logins_answer_at_once_and_recover_when_it_returns() {
    survives_a_redis_outage(TcpProxy::cut).await;
}

#[tokio::test]
async fn with_redis_blackholed_readyz_and_logins_answer_at_once_and_recover_when_it_returns() {
    survives_a_redis_outage(TcpProxy::blackhole).await;
}
