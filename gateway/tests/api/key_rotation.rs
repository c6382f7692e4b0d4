//! A rotation of the token signing key while clients are busy: nobody gets a `401` before their token
//! expires, whichever key signed it and whichever service answers (the gateway, identity, project,
//! task, audit and notification each verify the token), new tokens carry the new key from its
//! activation, and once the previous key is retired a token it signs is refused.
//!
//! Durations are shortened for the test: tokens live 4 s, identity reads its keys every 200 ms, every
//! verifier fetches them every 300 ms, and the new key is published 2 s before it signs. (Published for
//! less than a refresh, 250 ms, the new key's first tokens get `401`s here: the lead is what matters.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, Tokens, spawn_app_with};

const TTL_SECS: i64 = 4;
const LEAD: Duration = Duration::from_secs(2);
/// The leeway verifiers give `exp` (`ordo_auth::LEEWAY_SECONDS`): the previous key is published this
/// much longer than its last token lives.
const LEEWAY_SECS: i64 = 5;

fn options() -> Options {
    let refresh = vec!["--jwks-refresh-ms=300".to_owned()];
    Options {
        identity_args: vec![format!("--access-token-ttl-secs={TTL_SECS}"), "--signing-key-reload-ms=200".to_owned()],
        project_args: refresh.clone(),
        task_args: refresh.clone(),
        notification_args: refresh.clone(),
        audit_args: refresh.clone(),
        gateway_args: refresh,
        ..Options::default()
    }
}

/// Seconds since the epoch, with the fraction.
fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn header_and_claims(token: &str) -> (Value, Value) {
    let mut parts =
        token.split('.').map(|part| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

fn kid(token: &str) -> String {
    header_and_claims(token).0["kid"].as_str().unwrap().to_owned()
}

/// One request of a client: when it was sent, with a token of which key, issued and expiring when,
/// and the answer's status.
#[derive(Debug, Clone)]
struct Call {
    path: String,
    sent_at: f64,
    kid: String,
    iat: i64,
    exp: i64,
    status: StatusCode,
}

/// A client of one user: it calls an endpoint of every service in turn with its access token, and
/// refreshes the token (as clients do) only when it is about to expire, or once at `refresh_at`.
struct Client {
    tokens: Tokens,
    paths: Vec<String>,
    refresh_at: Option<f64>,
}

impl Client {
    /// Signs `email` up with a project of its own (`key`), so every service has something to answer.
    async fn sign_up(app: &TestApp, email: &str, key: &str) -> Self {
        let (_, tokens) = app.user(email, "Someone").await;
        let project = json!({"name": format!("Project {key}"), "key": key});
        let response = app.post_json_as(&tokens.access, "/api/v1/projects", &project).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let project: Value = response.json().await.unwrap();
        let project = project["id"].as_str().unwrap();
        let paths = vec![
            "/api/v1/users/me".to_owned(),
            "/api/v1/projects".to_owned(),
            format!("/api/v1/tasks?project_id={project}"),
            format!("/api/v1/audit/events?project_id={project}"),
            "/api/v1/notifications".to_owned(),
        ];
        Self { tokens, paths, refresh_at: None }
    }

    /// Calls every path every 100 ms until `until` (seconds since the epoch).
    async fn call_until(mut self, app: &TestApp, until: f64) -> Vec<Call> {
        let mut calls = Vec::new();
        while now() < until {
            let (_, claims) = header_and_claims(&self.tokens.access);
            let exp = claims["exp"].as_i64().unwrap();
            let refresh_now = self.refresh_at.is_some_and(|at| now() >= at);
            if (exp as f64) - now() < 1.0 || refresh_now {
                self.refresh_at = self.refresh_at.filter(|_| !refresh_now);
                let response = app.refresh(&self.tokens.refresh).await;
                assert_eq!(response.status(), StatusCode::OK, "refresh");
                self.tokens = Tokens::from_json(&response.json().await.unwrap());
                continue;
            }
            for path in &self.paths {
                let sent_at = now();
                let status = app.get_as(&self.tokens.access, path).await.status();
                let iat = claims["iat"].as_i64().unwrap();
                calls.push(Call { path: path.clone(), sent_at, kid: kid(&self.tokens.access), iat, exp, status });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        calls
    }
}

/// The `kid`s of `GET /api/v1/auth/jwks`.
async fn published(app: &TestApp) -> Vec<String> {
    let jwks: Value = app.client.get(app.url("/api/v1/auth/jwks")).send().await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap().to_owned()).collect()
}

/// The private key `kid` as identity keeps it (sealed with the harness's key-encryption key).
async fn stored_key(app: &TestApp, kid: &str) -> ordo_auth::SigningKey {
    let pool = sqlx::MySqlPool::connect(app.identity_database_url()).await.unwrap();
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT sealed_der FROM signing_key WHERE kid = ?")
        .bind(kid)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let kek =
        ordo_identity::infra::key_encryption::KeyEncryptionKey::from_base64(ordo_harness::KEY_ENCRYPTION_KEY).unwrap();
    ordo_auth::SigningKey::from_pkcs8_der(kid, &kek.open(kid, &sealed).unwrap()).unwrap()
}

#[tokio::test]
async fn a_key_rotation_logs_nobody_out_and_retires_the_old_key_once_its_tokens_have_expired() {
    // Arrange: three users, each holding a token of the key that signs now.
    let app = spawn_app_with(options()).await;
    let mut clients = Vec::new();
    for (email, key) in [("ada@example.com", "ADA"), ("bob@example.com", "BOB"), ("cy@example.com", "CY")] {
        clients.push(Client::sign_up(&app, email, key).await);
    }
    let old_kid = kid(&clients[0].tokens.access);
    assert_eq!(published(&app).await, std::slice::from_ref(&old_kid));
    // A token of the old key that outlives it: signed here with the key itself, for a live session.
    let (_, claims) = header_and_claims(&clients[0].tokens.access);
    let (sub, sid) = (claims["sub"].as_str().unwrap(), claims["sid"].as_str().unwrap());
    let old_key = stored_key(&app, &old_kid).await;
    let long_lived = old_key.access_token(sub, sid, "admin", now() as i64, 600).unwrap();

    // Act: the clients keep calling while the key rotates, until the last token of the old key has
    // expired.
    let rotation = ordo_identity::rotate_key(app.identity_config(), LEAD).await.unwrap();
    let activation = rotation.activate_at.unix_timestamp_nanos() as f64 / 1e9;
    let last_old_token_expires = activation + TTL_SECS as f64;
    // One client takes a new token just before the new key signs (one of the old key's last tokens),
    // another just after (one of the new key's first tokens, used at once: every verifier must hold
    // the new key before it signs).
    clients[0].refresh_at = Some(activation - 0.5);
    clients[1].refresh_at = Some(activation + 0.05);
    let calls: Vec<Call> =
        futures::future::join_all(clients.into_iter().map(|client| client.call_until(&app, last_old_token_expires)))
            .await
            .into_iter()
            .flatten()
            .collect();

    // Assert: every call was answered, by every service, with either key.
    let refused: Vec<&Call> = calls.iter().filter(|call| call.status != StatusCode::OK).collect();
    assert!(refused.is_empty(), "{} of {} calls refused: {refused:#?}", refused.len(), calls.len());
    let new_kid = rotation.kid.clone();
    assert!(calls.iter().any(|call| call.kid == old_kid && call.sent_at > activation + 1.0), "old tokens were used");
    assert!(calls.iter().any(|call| call.kid == new_kid && call.sent_at < activation + 0.5), "new tokens were used");
    // Tokens carry the key active when they were issued (`iat` is whole seconds).
    let activated = activation.floor() as i64;
    for call in &calls {
        if call.iat < activated {
            assert_eq!(call.kid, old_kid, "{call:?}");
        } else if call.iat > activated {
            assert_eq!(call.kid, new_kid, "{call:?}");
        }
        assert!(call.sent_at < call.exp as f64, "a token was used after it expired: {call:?}");
    }
    let paths: std::collections::BTreeSet<&str> =
        calls.iter().map(|call| call.path.split('?').next().unwrap()).collect();
    assert_eq!(paths.len(), 5, "{paths:?}");

    // Until it retires, the old key is published and its tokens verify.
    assert_eq!(published(&app).await, [new_kid.clone(), old_kid.clone()]);
    assert_eq!(app.me(&long_lived).await.status(), StatusCode::OK);

    // Once retired (its last token expired, plus the leeway), it is withdrawn: a token it signed is
    // refused, however long it claims to live.
    let retirement = last_old_token_expires + LEEWAY_SECS as f64;
    tokio::time::sleep(Duration::from_secs_f64((retirement - now()).max(0.0))).await;
    let mut status = app.me(&long_lived).await.status();
    while status == StatusCode::OK && now() < retirement + 3.0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = app.me(&long_lived).await.status();
    }
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(published(&app).await, [new_kid]);
    app.cleanup().await;
}
