//! Identity over real gRPC, MariaDB, Redis and RabbitMQ: rules that the gateway's end-to-end suite
//! cannot see from outside (concurrency, the events on the exchange).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt as _;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use ordo_harness::{Service, Stack};
use ordo_proto::events::v1::Envelope;
use ordo_proto::events::v1::envelope::Payload;
use ordo_proto::identity::v1 as pb;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use ordo_testkit::TestEnv;
use prost::Message as _;
use tonic::transport::Channel;

struct Identity {
    client: IdentityServiceClient<Channel>,
    /// The ops server (`/metrics`), as an operator's scraper reaches it.
    ops: std::net::SocketAddr,
    stack: Stack,
}

impl Identity {
    async fn stop(self) {
        self.stack.stop().await.unwrap();
    }
}

async fn spawn(env: &TestEnv) -> Identity {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,ordo=info").with_test_writer().try_init();
    // Ready when the key set is served (migrations and the signing key are done by then).
    let stack = Stack::of([Service::Identity]).args(Service::Identity, ["--hash-concurrency", "2"]).start(env).await;
    let client = IdentityServiceClient::new(stack.channel(Service::Identity));
    Identity { client, ops: stack.ops_addr(Service::Identity), stack }
}

fn register(email: &str) -> pb::RegisterRequest {
    pb::RegisterRequest {
        email: email.to_owned(),
        password: "correct horse battery staple".to_owned(),
        display_name: "Someone".to_owned(),
        client: Some(pb::ClientInfo { ip: "203.0.113.7".into(), user_agent: "tests/1.0".into() }),
    }
}

fn login(email: &str, password: &str) -> pb::LoginRequest {
    pb::LoginRequest {
        email: email.to_owned(),
        password: password.to_owned(),
        client: Some(pb::ClientInfo { ip: "203.0.113.7".into(), user_agent: "tests/1.0".into() }),
    }
}

impl Identity {
    /// Registers `email` with the usual password and logs it in.
    async fn signed_up(&mut self, email: &str) -> pb::TokenPair {
        self.client.register(register(email)).await.unwrap();
        self.client.login(login(email, PASSWORD)).await.unwrap().into_inner().tokens.unwrap()
    }
}

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn concurrent_first_registrations_make_exactly_one_admin() {
    let env = TestEnv::new();
    let identity = spawn(&env).await;

    let registrations = (0..6).map(|i| {
        let mut client = identity.client.clone();
        async move { client.register(register(&format!("user{i}@example.com"))).await.unwrap().into_inner() }
    });
    let users: Vec<_> = futures::future::join_all(registrations).await;

    let admins = users.iter().filter(|r| r.user.as_ref().unwrap().role == pb::Role::Admin as i32).count();
    assert_eq!(admins, 1);
    assert_eq!(users.len(), 6);
    identity.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_create_one_account() {
    let env = TestEnv::new();
    let identity = spawn(&env).await;

    let attempts = ["Dup@Example.com", "dup@example.com", " DUP@EXAMPLE.COM "].map(|email| {
        let mut client = identity.client.clone();
        async move { client.register(register(email)).await.map(|_| ()).map_err(|s| s.code()) }
    });
    let results = futures::future::join_all(attempts).await;

    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().filter_map(|r| r.err()).all(|code| code == tonic::Code::AlreadyExists));
    identity.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_refresh_token_spent_twice_at_once_yields_one_new_pair() {
    let env = TestEnv::new();
    let mut identity = spawn(&env).await;
    let tokens = identity.signed_up("racer@example.com").await;

    let refreshes = (0..4).map(|_| {
        let mut client = identity.client.clone();
        let refresh_token = tokens.refresh_token.clone();
        async move { client.refresh_session(pb::RefreshSessionRequest { refresh_token, client: None }).await }
    });
    let results = futures::future::join_all(refreshes).await;

    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1);
    // The losers presented a spent token: reuse, so the whole session is gone, winner included.
    let new_refresh = winners[0].get_ref().tokens.clone().unwrap().refresh_token;
    let after =
        identity.client.refresh_session(pb::RefreshSessionRequest { refresh_token: new_refresh, client: None }).await;
    assert_eq!(after.unwrap_err().code(), tonic::Code::Unauthenticated);
    identity.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn identity_events_reach_the_exchange_once_each_with_client_details() {
    let env = TestEnv::new();
    let amqp =
        lapin::Connection::connect(&ordo_testkit::amqp_url(), lapin::ConnectionProperties::default()).await.unwrap();
    let channel = amqp.create_channel().await.unwrap();
    ordo_events::declare_exchange(&channel, &env.exchange()).await.unwrap();
    let queue = env.queue("identity-events");
    channel.queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            env.exchange().into(),
            "identity.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut identity = spawn(&env).await;

    let admin = identity.client.register(register("admin@example.com")).await.unwrap().into_inner().user.unwrap();
    identity.client.register(register("member@example.com")).await.unwrap();
    identity.client.login(login("admin@example.com", "wrong password!!")).await.unwrap_err();
    let tokens = identity
        .client
        .login(login("admin@example.com", "correct horse battery staple"))
        .await
        .unwrap()
        .into_inner()
        .tokens
        .unwrap();
    let refreshed = identity
        .client
        .refresh_session(pb::RefreshSessionRequest { refresh_token: tokens.refresh_token.clone(), client: None })
        .await
        .unwrap();
    assert!(refreshed.get_ref().tokens.is_some());
    // Reuse of the spent token: reuse detected and the session revoked.
    identity
        .client
        .refresh_session(pb::RefreshSessionRequest { refresh_token: tokens.refresh_token, client: None })
        .await
        .unwrap_err();

    let mut consumer = channel
        .basic_consume(queue.as_str().into(), "test".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let mut seen: BTreeMap<String, Vec<Envelope>> = BTreeMap::new();
    // Two registrations, one failed and one successful login, the reuse and the revocation it caused.
    let expected = 6;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.values().map(Vec::len).sum::<usize>() < expected {
        let delivery =
            tokio::time::timeout_at(deadline, consumer.next()).await.expect("events in time").unwrap().unwrap();
        let envelope = Envelope::decode(&delivery.data[..]).unwrap();
        assert_eq!(delivery.properties.message_id().as_ref().map(|m| m.to_string()), Some(envelope.event_id.clone()));
        delivery.ack(BasicAckOptions::default()).await.unwrap();
        seen.entry(envelope.r#type.clone()).or_default().push(envelope);
    }
    // Nothing more arrives: each event was published once.
    assert!(tokio::time::timeout(Duration::from_millis(1500), consumer.next()).await.is_err());

    let counts: BTreeMap<&str, usize> = seen.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("identity.login_failed", 1),
            ("identity.login_succeeded", 1),
            ("identity.refresh_reuse_detected", 1),
            ("identity.session_revoked", 1),
            ("identity.user_registered", 2),
        ])
    );
    let failed = &seen["identity.login_failed"][0];
    assert_eq!(failed.ip, "203.0.113.7");
    assert_eq!(failed.user_agent, "tests/1.0");
    assert_eq!(failed.producer, "identity");
    match &failed.payload {
        Some(Payload::LoginFailed(p)) => {
            assert_eq!(p.email, "admin@example.com");
            assert_eq!(p.user_id, admin.id);
            assert_eq!(p.reason, "bad_credentials");
        }
        other => panic!("unexpected payload {other:?}"),
    }
    let registered = &seen["identity.user_registered"][0];
    assert_eq!(registered.entity_type, "user");
    assert_eq!(registered.entity_id, admin.id);
    assert_eq!(registered.actor_id, admin.id);

    identity.stop().await;
    let _ = amqp.close(200, "done".into()).await;
    env.cleanup().await.unwrap();
}

fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn a_cached_account_reflects_every_write_at_once() {
    let env = TestEnv::new();
    let mut identity = spawn(&env).await;
    let access = identity.signed_up("cached@example.com").await.access_token;
    let first = identity.client.get_me(bearer(pb::GetMeRequest {}, &access)).await.unwrap().into_inner().user.unwrap();
    let redis = redis::Client::open(ordo_testkit::redis_url()).unwrap();
    let mut redis = redis.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}user:{}", env.redis_prefix(), first.id);
    let cached: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut redis).await.unwrap();
    assert!(
        cached.is_some_and(|v| v.contains("cached@example.com") && !v.contains("argon2")),
        "cached without the hash"
    );

    identity
        .client
        .update_me(bearer(
            pb::UpdateMeRequest { display_name: Some("Renamed".into()), expected_version: None },
            &access,
        ))
        .await
        .unwrap();
    let second = identity.client.get_me(bearer(pb::GetMeRequest {}, &access)).await.unwrap().into_inner().user.unwrap();
    let third = identity.client.get_me(bearer(pb::GetMeRequest {}, &access)).await.unwrap().into_inner().user.unwrap();

    assert_eq!(second.display_name, "Renamed");
    assert_eq!(second.version, first.version + 1);
    assert_eq!(third, second);
    // The password still changes against the real hash, not the cached (hash-less) account.
    identity
        .client
        .change_password(bearer(
            pb::ChangePasswordRequest {
                current_password: "correct horse battery staple".into(),
                new_password: "another long passphrase".into(),
                client: None,
            },
            &access,
        ))
        .await
        .unwrap();
    identity.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn guessing_the_current_password_is_locked_out_like_a_login() {
    let env = TestEnv::new();
    let mut identity = spawn(&env).await;
    let access = identity.signed_up("guess@example.com").await.access_token;
    let change = |current: &str| {
        bearer(
            pb::ChangePasswordRequest {
                current_password: current.to_owned(),
                new_password: "another long passphrase".into(),
                client: None,
            },
            &access,
        )
    };

    for attempt in 0..5 {
        let status = identity.client.change_password(change(&format!("wrong guess {attempt:02}"))).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }
    let locked = identity.client.change_password(change("correct horse battery staple")).await.unwrap_err();

    assert_eq!(locked.code(), tonic::Code::ResourceExhausted);
    let retry_after: u64 = locked.metadata().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after));
    // The login of that email is locked too: it is one budget of guesses.
    let login = identity.client.login(login("guess@example.com", "correct horse battery staple")).await.unwrap_err();
    assert_eq!(login.code(), tonic::Code::ResourceExhausted);
    identity.stop().await;
    env.cleanup().await.unwrap();
}

/// Password verifications argon2 ran, as `/metrics` of the identity process reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Verifications {
    matched: u64,
    mismatched: u64,
}

impl Identity {
    async fn verifications(&self) -> Verifications {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(self.ops).await.unwrap();
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: identity\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let count = |outcome: &str| {
            let series = format!("ordo_identity_password_verifications_total{{outcome=\"{outcome}\"}} ");
            response.lines().find_map(|line| line.strip_prefix(&series)).map_or(0, |v| v.trim().parse().unwrap())
        };
        Verifications { matched: count("match"), mismatched: count("mismatch") }
    }

    async fn update_user(&mut self, admin_access: &str, request: pb::UpdateUserRequest) -> pb::User {
        self.client.update_user(bearer(request, admin_access)).await.unwrap().into_inner().user.unwrap()
    }

    async fn check_session(&mut self, access: &str, session_id: &str) -> bool {
        let request = bearer(pb::CheckSessionRequest { session_id: session_id.to_owned() }, access);
        self.client.check_session(request).await.unwrap().into_inner().active
    }
}

/// The claims of an access token, read without verifying it (the service already did).
fn claims(access_token: &str) -> ordo_auth::AccessClaims {
    use base64::Engine as _;
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn session_marker(env: &TestEnv, session_id: &str) -> Option<String> {
    let redis = redis::Client::open(ordo_testkit::redis_url()).unwrap();
    let mut redis = redis.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}session:{}", env.redis_prefix(), session_id);
    redis::cmd("GET").arg(&key).query_async(&mut redis).await.unwrap()
}

#[tokio::test]
async fn fifty_parallel_wrong_passwords_get_only_five_verified_and_the_rest_locked_out() {
    let env = TestEnv::new();
    let mut identity = spawn(&env).await;
    identity.client.register(register("target@example.com")).await.unwrap();
    let before = identity.verifications().await;

    let guesses = (0..50).map(|i| {
        let mut client = identity.client.clone();
        async move {
            client.login(login("target@example.com", &format!("wrong guess number {i:02}"))).await.map(|_| ()).map_err(
                |status| {
                    let retry_after = status.metadata().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                    (status.code(), retry_after)
                },
            )
        }
    });
    let results = futures::future::join_all(guesses).await;

    let after = identity.verifications().await;
    let verified = after.mismatched - before.mismatched;
    assert!(verified <= 5, "{verified} wrong passwords were verified");
    assert_eq!(after.matched, before.matched);
    let refused = results.iter().filter(|r| matches!(r, Err((tonic::Code::Unauthenticated, _)))).count();
    let locked: Vec<u64> = results
        .iter()
        .filter_map(|r| match r {
            Err((tonic::Code::ResourceExhausted, retry_after)) => {
                Some(retry_after.as_deref().unwrap().parse().unwrap())
            }
            _ => None,
        })
        .collect();
    assert_eq!((refused, locked.len()), (5, 45), "{results:?}");
    assert_eq!(verified, 5);
    assert!(locked.iter().all(|secs| (1..=900).contains(secs)), "{locked:?}");
    // Even the right password now waits for the window, and is not verified either.
    let right = identity.client.login(login("target@example.com", PASSWORD)).await.unwrap_err();
    assert_eq!(right.code(), tonic::Code::ResourceExhausted);
    assert_eq!(identity.verifications().await, after);
    identity.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_right_password_within_the_budget_logs_in_and_starts_the_count_over() {
    let env = TestEnv::new();
    let mut identity = spawn(&env).await;
    identity.client.register(register("forgetful@example.com")).await.unwrap();
    let wrong = |i: usize| login("forgetful@example.com", &format!("not my password {i:02}"));

    for i in 0..4 {
        let status = identity.client.login(wrong(i)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
    // The fifth attempt is still within the budget: the right password logs in.
    identity.client.login(login("forgetful@example.com", PASSWORD)).await.unwrap();

    // A fresh budget of five, then even the right password is locked out.
    for i in 0..5 {
        let status = identity.client.login(wrong(i)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "attempt {i} after the reset");
    }
    let locked = identity.client.login(login("forgetful@example.com", PASSWORD)).await.unwrap_err();
    assert_eq!(locked.code(), tonic::Code::ResourceExhausted);
    identity.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn an_unknown_email_is_counted_and_locked_out_like_a_known_one() {
    let env = TestEnv::new();
    let mut identity = spawn(&env).await;
    let before = identity.verifications().await;

    let mut codes = Vec::new();
    for i in 0..6 {
        let status = identity.client.login(login("nobody@example.com", &format!("any guess at all {i}"))).await;
        codes.push(status.unwrap_err().code());
    }

    assert_eq!(codes[..5], [tonic::Code::Unauthenticated; 5]);
    assert_eq!(codes[5], tonic::Code::ResourceExhausted);
    // The decoy hash was verified for each counted attempt, as a real account's would be.
    assert_eq!(identity.verifications().await.mismatched - before.mismatched, 5);
    identity.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_role_change_revokes_every_session_of_the_user() {
    let env = TestEnv::new();
    let mut identity = spawn(&env).await;
    let admin = identity.signed_up("boss@example.com").await.access_token;
    let first = identity.signed_up("promoted@example.com").await.access_token;
    let second = identity.client.login(login("promoted@example.com", PASSWORD)).await.unwrap().into_inner();
    let second = second.tokens.unwrap().access_token;
    let user_id = claims(&first).sub;
    let sessions = [claims(&first).sid, claims(&second).sid];
    assert_eq!(claims(&first).role, "member");

    let updated = identity
        .update_user(
            &admin,
            pb::UpdateUserRequest { id: user_id.clone(), role: pb::Role::Admin as i32, ..Default::default() },
        )
        .await;

    assert_eq!(updated.role, pb::Role::Admin as i32);
    for sid in &sessions {
        assert!(!identity.check_session(&admin, sid).await, "session {sid} outlived the role change");
        assert_eq!(session_marker(&env, sid).await.as_deref(), Some("0"));
    }
    // The next login carries the new role.
    let again = identity.client.login(login("promoted@example.com", PASSWORD)).await.unwrap().into_inner();
    assert_eq!(claims(&again.tokens.unwrap().access_token).role, "admin");
    identity.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn an_update_that_leaves_the_role_as_it_is_revokes_nothing() {
    let env = TestEnv::new();
    let mut identity = spawn(&env).await;
    let admin = identity.signed_up("boss@example.com").await.access_token;
    let member = identity.signed_up("member@example.com").await.access_token;
    let (user_id, sid) = (claims(&member).sub, claims(&member).sid);

    let same_role = pb::UpdateUserRequest { id: user_id.clone(), role: pb::Role::Member as i32, ..Default::default() };
    let before = identity.update_user(&admin, same_role).await;
    let empty = identity.update_user(&admin, pb::UpdateUserRequest { id: user_id, ..Default::default() }).await;

    assert_eq!(empty.version, before.version, "a no-op patch writes nothing");
    assert!(identity.check_session(&admin, &sid).await);
    assert_eq!(session_marker(&env, &sid).await.as_deref(), Some("1"));
    identity.stop().await;
    env.cleanup().await.unwrap();
}
