//! Rotation of the access-token signing key over real gRPC and MariaDB: the new key is published before
//! it signs and signs from its activation, the previous key is published until its tokens have expired
//! and then deleted, two rotations at once add one key, instances agree on the key that signs, and the
//! keys kept in the schema are sealed (a plain key of an earlier release too).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use clap::Parser as _;
use ordo_harness::{Service, Stack};
use ordo_identity::Config;
use ordo_proto::identity::v1 as pb;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use ordo_testkit::TestEnv;
use serde_json::Value;
use time::OffsetDateTime;
use tonic::transport::Channel;

const PASSWORD: &str = "correct horse battery staple";
/// Tokens live 3 s and each instance reads the keys five times a second, so a whole rotation, the
/// previous key's retirement included, takes about ten seconds.
const IDENTITY_FLAGS: [&str; 4] =
    ["--access-token-ttl-secs=3", "--signing-key-reload-ms=200", "--hash-concurrency", "2"];
/// How long a test's new key is published before it signs.
const LEAD: Duration = Duration::from_secs(2);

async fn spawn(env: &TestEnv) -> Stack {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,ordo=info").with_test_writer().try_init();
    Stack::of([Service::Identity]).args(Service::Identity, IDENTITY_FLAGS).pool(Service::Identity).start(env).await
}

/// Stops the stack and drops what the test made.
async fn stop(stack: Stack, env: TestEnv) {
    stack.stop().await.unwrap();
    env.cleanup().await.unwrap();
}

async fn sign_up(client: &mut IdentityServiceClient<Channel>, email: &str) {
    let request = pb::RegisterRequest {
        email: email.to_owned(),
        password: PASSWORD.to_owned(),
        display_name: "Someone".to_owned(),
        client: None,
    };
    client.register(request).await.unwrap();
}

async fn access_token(client: &mut IdentityServiceClient<Channel>, email: &str) -> String {
    let request = pb::LoginRequest { email: email.to_owned(), password: PASSWORD.to_owned(), client: None };
    client.login(request).await.unwrap().into_inner().tokens.unwrap().access_token
}

async fn get_me(client: &mut IdentityServiceClient<Channel>, access_token: &str) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(pb::GetMeRequest {});
    request.metadata_mut().insert("authorization", format!("Bearer {access_token}").parse().unwrap());
    client.get_me(request).await.map(|_| ())
}

/// The `kid`s of the published key set, in order.
async fn published(client: &mut IdentityServiceClient<Channel>) -> Vec<String> {
    let json = client.get_jwks(pb::GetJwksRequest {}).await.unwrap().into_inner().jwks_json;
    let jwks: Value = serde_json::from_str(&json).unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap().to_owned()).collect()
}

fn kid(token: &str) -> String {
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_owned()
}

/// Sleeps until `at`, on the test's clock, which is the instance's.
async fn sleep_until(at: OffsetDateTime) {
    let left = at - OffsetDateTime::now_utc();
    if left.is_positive() {
        tokio::time::sleep(left.unsigned_abs()).await;
    }
}

/// Waits up to two seconds (ten reloads) until the published `kid`s are `expected`; the last seen.
async fn published_soon(client: &IdentityServiceClient<Channel>, expected: &[String]) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let seen = published(&mut client.clone()).await;
        if seen == expected || tokio::time::Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stored_generations(stack: &Stack) -> Vec<u32> {
    sqlx::query_scalar("SELECT slot FROM signing_key ORDER BY slot")
        .fetch_all(stack.pool(Service::Identity))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_new_key_is_published_before_it_signs_and_the_previous_one_until_its_tokens_have_expired() {
    // Arrange
    let env = TestEnv::new();
    let stack = spawn(&env).await;
    let mut client = IdentityServiceClient::new(stack.channel(Service::Identity));
    sign_up(&mut client, "ada@example.com").await;
    let old_token = access_token(&mut client, "ada@example.com").await;
    let old_kid = kid(&old_token);
    assert_eq!(published(&mut client).await, std::slice::from_ref(&old_kid));

    // Act
    let rotation = ordo_identity::rotate_key(stack.identity_config(), LEAD).await.unwrap();

    // Assert: published at once (within a reload), not signing yet.
    assert!(rotation.created);
    assert_ne!(rotation.kid, old_kid);
    let expected = [old_kid.clone(), rotation.kid.clone()];
    assert_eq!(published_soon(&client, &expected).await, expected);
    assert!(OffsetDateTime::now_utc() < rotation.activate_at, "the test took longer than the lead");
    assert_eq!(kid(&access_token(&mut client, "ada@example.com").await), old_kid);

    // From its activation it signs, and the previous key is still published.
    sleep_until(rotation.activate_at).await;
    let new_token = access_token(&mut client, "ada@example.com").await;
    assert_eq!(kid(&new_token), rotation.kid);
    assert_eq!(published(&mut client).await, [rotation.kid.clone(), old_kid.clone()]);
    get_me(&mut client, &new_token).await.unwrap();

    // Once the last token of the previous key has expired (3 s, plus the 5 s leeway), it is retired:
    // out of the key set, and deleted.
    sleep_until(rotation.activate_at + time::Duration::seconds(8)).await;
    let expected = [rotation.kid.clone()];
    assert_eq!(published_soon(&client, &expected).await, expected);
    // The next reload deletes it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stored_generations(&stack).await, [2]);
    assert!(get_me(&mut client, &old_token).await.is_err(), "expired and retired");
    stop(stack, env).await;
}

#[tokio::test]
async fn two_rotations_started_at_once_add_one_key_and_a_rotation_under_way_adds_none() {
    // Arrange
    let env = TestEnv::new();
    let stack = spawn(&env).await;
    let config = stack.identity_config();

    // Act
    let (first, second) = tokio::join!(
        ordo_identity::rotate_key(config, Duration::from_secs(60)),
        ordo_identity::rotate_key(config, Duration::from_secs(60))
    );
    let again = ordo_identity::rotate_key(config, Duration::from_secs(60)).await.unwrap();

    // Assert
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.kid, second.kid);
    assert_eq!(u8::from(first.created) + u8::from(second.created), 1, "{first:?} {second:?}");
    assert_eq!((again.kid, again.created), (first.kid.clone(), false));
    assert_eq!(stored_generations(&stack).await, [1, 2]);
    stop(stack, env).await;
}

#[tokio::test]
async fn two_instances_sign_with_the_same_key_from_its_activation() {
    // Arrange
    let env = TestEnv::new();
    let stack = spawn(&env).await;
    let second = stack.another(Service::Identity).await;
    let mut clients =
        [IdentityServiceClient::new(stack.channel(Service::Identity)), IdentityServiceClient::new(second.channel())];
    sign_up(&mut clients[0], "ada@example.com").await;

    // Act
    let rotation = ordo_identity::rotate_key(stack.identity_config(), LEAD).await.unwrap();
    sleep_until(rotation.activate_at).await;

    // Assert: each instance signs with the new key, and each one's tokens are good at the other.
    let tokens = [
        access_token(&mut clients[0], "ada@example.com").await,
        access_token(&mut clients[1], "ada@example.com").await,
    ];
    assert_eq!(tokens.iter().map(|token| kid(token)).collect::<Vec<_>>(), [rotation.kid.clone(), rotation.kid.clone()]);
    get_me(&mut clients[1], &tokens[0]).await.unwrap();
    get_me(&mut clients[0], &tokens[1]).await.unwrap();
    assert_eq!(published(&mut clients[0]).await, published(&mut clients[1]).await);
    second.stop().await.unwrap();
    stop(stack, env).await;
}

/// A configuration of the schema `url` with `flags`.
fn config(url: &str, flags: &[&str]) -> Config {
    let mut args = vec!["ordo-identity".to_owned(), format!("--database-url={url}")];
    args.extend(flags.iter().map(|flag| (*flag).to_owned()));
    Config::try_parse_from(args).unwrap()
}

#[tokio::test]
async fn a_plain_key_of_the_previous_release_is_sealed_at_the_first_start_with_a_key_encryption_key() {
    // Arrange: the previous release's key, as the migration leaves it (plain, signing since it was made).
    let env = TestEnv::new();
    let url = env.create_schema("identity").await.unwrap();
    let kek = STANDARD.encode([42_u8; 32]);
    let sealing = config(&url, &[&format!("--key-encryption-key={kek}")]);
    let pool = ordo_identity::migrate(&sealing).await.unwrap();
    let legacy = ordo_auth::SigningKey::generate("0190b6a47c1e70008000000000000001").unwrap();
    sqlx::query("INSERT INTO signing_key (slot, kid, private_der, created_at, activate_at) VALUES (1, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))")
        .bind(legacy.kid())
        .bind(legacy.pkcs8_der())
        .execute(&pool)
        .await
        .unwrap();
    let token =
        legacy.access_token(&uuid(), &uuid(), "member", OffsetDateTime::now_utc().unix_timestamp(), 60).unwrap();

    // Act
    let keys = ordo_identity::signing_keys(&sealing, &pool).await.unwrap();

    // Assert: the same key signs (its tokens stay good), now sealed.
    assert!(keys.verifier().verify(&token).is_ok());
    let (plain, sealed): (Option<Vec<u8>>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT private_der, sealed_der FROM signing_key WHERE slot = 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(plain, None);
    let sealed = sealed.unwrap();
    assert!(!sealed.windows(16).any(|window| legacy.pkcs8_der().windows(16).any(|part| part == window)));

    // Another key-encryption key, or none, does not open it; nothing starts without one.
    let other = config(&url, &[&format!("--key-encryption-key={}", STANDARD.encode([7_u8; 32]))]);
    let error = ordo_identity::signing_keys(&other, &pool).await.unwrap_err();
    assert!(format!("{error:#}").contains("sealed with the key-encryption key"), "{error:#}");
    let plain_dev = config(&url, &["--allow-plaintext-signing-keys"]);
    assert!(ordo_identity::signing_keys(&plain_dev, &pool).await.is_err());
    let error = ordo_identity::signing_keys(&config(&url, &[]), &pool).await.unwrap_err();
    assert!(format!("{error:#}").contains("ORDO_KEY_ENCRYPTION_KEY"), "{error:#}");
    pool.close().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_new_key_encryption_key_seals_again_what_the_previous_one_sealed() {
    // Arrange: keys sealed with one key-encryption key, and a token of the key that signs.
    let env = TestEnv::new();
    let url = env.create_schema("identity").await.unwrap();
    let (old_kek, new_kek) = (STANDARD.encode([1_u8; 32]), STANDARD.encode([2_u8; 32]));
    let old = config(&url, &[&format!("--key-encryption-key={old_kek}")]);
    let pool = ordo_identity::migrate(&old).await.unwrap();
    let before = ordo_identity::signing_keys(&old, &pool).await.unwrap();
    let token = before.issue(&uuid(), &uuid(), "member", OffsetDateTime::now_utc()).unwrap();
    let changing = config(
        &url,
        &[&format!("--key-encryption-key={new_kek}"), &format!("--previous-key-encryption-key={old_kek}")],
    );

    // Act
    let after = ordo_identity::signing_keys(&changing, &pool).await.unwrap();

    // Assert: the same key, sealed with the new key-encryption key only.
    assert!(after.verifier().verify(&token).is_ok());
    let new_id = ordo_identity::infra::key_encryption::KeyEncryptionKey::from_base64(&new_kek).unwrap().id();
    let ids: Vec<Vec<u8>> = sqlx::query_scalar("SELECT kek_id FROM signing_key").fetch_all(&pool).await.unwrap();
    assert_eq!(ids, [new_id.to_vec()]);
    assert!(
        ordo_identity::signing_keys(&config(&url, &[&format!("--key-encryption-key={new_kek}")]), &pool).await.is_ok()
    );
    assert!(ordo_identity::signing_keys(&old, &pool).await.is_err());
    pool.close().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn the_first_rotation_of_a_schema_without_a_key_makes_one_key_named_after_its_public_key() {
    // Arrange: a deployment whose key was configured has an empty table.
    let env = TestEnv::new();
    let url = env.create_schema("identity").await.unwrap();
    let sealing = config(&url, &[&format!("--key-encryption-key={}", STANDARD.encode([5_u8; 32]))]);
    let pool = ordo_identity::migrate(&sealing).await.unwrap();

    // Act
    let first = ordo_identity::rotate_key(&sealing, Duration::from_secs(600)).await.unwrap();

    // Assert: one key, signing at once (no instance reads the schema yet), its kid derived from `x`.
    assert!(first.created);
    assert_eq!(first.generation, 1);
    assert!(first.activate_at <= OffsetDateTime::now_utc());
    assert_eq!(first.kid, ordo_auth::derived_kid(&first.public_x));
    assert_eq!(ordo_auth::public_jwk(&first.public_x).unwrap().common.key_id, Some(first.kid.clone()));
    let generations: Vec<u32> = sqlx::query_scalar("SELECT slot FROM signing_key").fetch_all(&pool).await.unwrap();
    assert_eq!(generations, [1]);
    pool.close().await;
    env.cleanup().await.unwrap();
}

fn uuid() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[tokio::test]
async fn a_rotation_is_refused_when_the_key_is_configured_or_the_lead_is_shorter_than_a_reload() {
    // Arrange
    let env = TestEnv::new();
    let url = env.create_schema("identity").await.unwrap();
    let der = ordo_auth::SigningKey::generate("unused").unwrap().pkcs8_der().to_vec();
    let configured = config(&url, &[&format!("--jwt-private-key={}", STANDARD.encode(der))]);
    let sealing = config(
        &url,
        &[&format!("--key-encryption-key={}", STANDARD.encode([1_u8; 32])), "--signing-key-reload-ms=30000"],
    );

    // Act
    let configured = ordo_identity::rotate_key(&configured, Duration::from_secs(600)).await.unwrap_err();
    let too_short = ordo_identity::rotate_key(&sealing, Duration::from_secs(30)).await.unwrap_err();

    // Assert
    assert!(configured.to_string().contains("rotate it by configuration"), "{configured}");
    assert!(too_short.to_string().contains("--signing-key-reload-ms"), "{too_short}");
    env.cleanup().await.unwrap();
}
