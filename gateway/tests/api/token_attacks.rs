//! Every way of presenting a token that must not work, side by side: each is refused with `401` and
//! the very same body and challenge, so a refusal tells an attacker nothing about which check failed.
//! Identity runs with a signing key this test knows, so it can sign tokens that are genuine in every
//! respect but the one under attack.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, spawn_app_with};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims like identity's for `sub` in session `sid`, issued now for 15 minutes.
fn claims(sub: &str, sid: &str) -> Value {
    json!({
        "iss": "ordo", "sub": sub, "sid": sid, "role": "admin",
        "iat": now(), "exp": now() + 900, "jti": uuid::Uuid::now_v7().to_string(),
    })
}

/// A header like identity's: EdDSA, `typ: at+jwt`, the key's id.
fn header(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(kid.to_owned());
    header
}

fn sign(header: &Header, claims: &Value, der: &[u8]) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_ed_der(der)).unwrap()
}

#[tokio::test]
async fn every_forged_stale_or_revoked_token_gets_the_same_401() {
    // Arrange: identity signs with a key the test holds.
    let key = ordo_auth::SigningKey::generate("unused").unwrap();
    let der = key.pkcs8_der().to_vec();
    let kid = ordo_auth::SigningKey::from_pkcs8_der_derived_kid(&der).unwrap().kid().to_owned();
    let options =
        Options { identity_args: vec![format!("--jwt-private-key={}", STANDARD.encode(&der))], ..Options::default() };
    let app = spawn_app_with(options).await;
    let (admin_id, admin) = app.user("admin@example.com", "Admin").await;
    let (bob_id, bob) = app.user("bob@example.com", "Bob").await;
    let (_, carol) = app.user("carol@example.com", "Carol").await;
    let (_, dave) = app.user("dave@example.com", "Dave").await;
    let (eve_id, _) = app.user("eve@example.com", "Eve").await;
    let sid = |token: &str| {
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["sid"].as_str().unwrap().to_owned()
    };
    let live_sid = sid(&admin.access);
    // The genuine article, as a control: signed here, accepted by the gateway.
    let genuine = sign(&header(&kid), &claims(&admin_id, &live_sid), &der);
    assert_eq!(app.me(&genuine).await.status(), StatusCode::OK, "the test signs tokens as identity does");

    let base = claims(&admin_id, &live_sid);
    let with = |field: &str, value: Value| {
        let mut claims = base.clone();
        claims[field] = value;
        claims
    };
    let public_x = {
        let jwks: Value = app.client.get(app.url("/api/v1/auth/jwks")).send().await.unwrap().json().await.unwrap();
        jwks["keys"][0]["x"].as_str().unwrap().to_owned()
    };
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt", "kid": kid}).to_string()),
        URL_SAFE_NO_PAD.encode(base.to_string())
    );
    let hs256_with_public_key = {
        let mut hs = Header::new(Algorithm::HS256);
        hs.typ = Some("at+jwt".to_owned());
        hs.kid = Some(kid.clone());
        jsonwebtoken::encode(&hs, &base, &EncodingKey::from_secret(public_x.as_bytes()).unwrap()).unwrap()
    };
    let foreign = ordo_auth::SigningKey::generate(kid.clone()).unwrap();
    let mut wrong_typ = header(&kid);
    wrong_typ.typ = Some("JWT".to_owned());

    // A revoked session (logged out), a disabled user's session, a demoted admin's session.
    let logged_out = carol.access.clone();
    let logout = app.client.post(app.url("/api/v1/auth/logout")).bearer_auth(&carol.access).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let disable = app
        .client
        .patch(app.url(&format!("/api/v1/users/{bob_id}")))
        .bearer_auth(&admin.access)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(disable.status(), StatusCode::OK);
    let set_role = |role: &'static str| {
        app.client
            .patch(app.url(&format!("/api/v1/users/{eve_id}")))
            .bearer_auth(&admin.access)
            .json(&json!({"role": role}))
            .send()
    };
    assert_eq!(set_role("admin").await.unwrap().status(), StatusCode::OK);
    let demoted_admin = app.tokens("eve@example.com").await.access;
    assert_eq!(app.get_as(&demoted_admin, "/api/v1/users").await.status(), StatusCode::OK, "an admin lists users");
    assert_eq!(set_role("member").await.unwrap().status(), StatusCode::OK);

    let attacks: Vec<(&str, String)> = vec![
        ("alg none", alg_none),
        ("HS256 signed with the public key", hs256_with_public_key),
        ("a foreign Ed25519 key under the real key id", sign(&header(&kid), &base, foreign.pkcs8_der())),
        ("expired", sign(&header(&kid), &with("exp", json!(now() - 120)), &der)),
        ("not yet valid (nbf)", sign(&header(&kid), &with("nbf", json!(now() + 3600)), &der)),
        ("issued in the future (iat)", sign(&header(&kid), &with("iat", json!(now() + 3600)), &der)),
        ("wrong issuer", sign(&header(&kid), &with("iss", json!("someone-else")), &der)),
        ("wrong typ", sign(&wrong_typ, &base, &der)),
        ("a session that never existed", sign(&header(&kid), &with("sid", json!(uuid::Uuid::now_v7())), &der)),
        ("a refresh token as access token", dave.refresh.clone()),
        ("a revoked (logged out) session", logged_out),
        ("a disabled user's token", bob.access.clone()),
        ("a demoted admin's token", demoted_admin),
        ("garbage", "not.a.token".to_owned()),
    ];

    // Act
    let mut answers = Vec::new();
    for (attack, token) in &attacks {
        let response = app.me(token).await;
        let status = response.status();
        let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        answers.push((*attack, status, challenge, body));
    }

    // Assert: all 401, one challenge, one body.
    let (_, _, first_challenge, first_body) = &answers[0];
    for (attack, status, challenge, body) in &answers {
        assert_eq!(*status, StatusCode::UNAUTHORIZED, "{attack}: {body}");
        assert_eq!(challenge, first_challenge, "{attack}");
        assert_eq!(body, first_body, "{attack}");
    }
    assert_eq!(first_body["status"], 401);
    assert_eq!(app.me(&dave.access).await.status(), StatusCode::OK, "a live session still works");
    app.cleanup().await;
}
