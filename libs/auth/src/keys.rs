//! Signing keys, the public key set (JWKS) and the verifier built from it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters,
    OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair as _};

use crate::{ACCESS_TOKEN_TYPE, AccessClaims, ISSUER, TokenError};

/// Seconds of clock skew tolerated between processes when checking `exp` (and `iat`): a token is
/// accepted until this long after its `exp`, so identity keeps a key published at least this long
/// after the last token it signed expired.
pub const LEEWAY_SECONDS: u64 = 5;

/// The length of an Ed25519 public key, bytes.
const PUBLIC_KEY_LEN: usize = 32;

/// An Ed25519 private key with its key id.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    encoding: EncodingKey,
    public_x: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key with the system's secure random generator.
    pub fn generate(kid: impl Into<String>) -> Result<Self, TokenError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| TokenError::Key(e.to_string()))?;
        Self::from_pkcs8_der(kid, pkcs8.as_ref())
    }

    /// Loads a key from its PKCS#8 DER encoding.
    pub fn from_pkcs8_der(kid: impl Into<String>, der: &[u8]) -> Result<Self, TokenError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| TokenError::Key(e.to_string()))?;
        Ok(Self {
            kid: kid.into(),
            pkcs8: der.to_vec(),
            encoding: EncodingKey::from_ed_der(der),
            public_x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        })
    }

    /// Loads a key from its PKCS#8 DER encoding, naming it after its public key ([`derived_kid`]),
    /// so every instance given the same key agrees on its `kid`.
    pub fn from_pkcs8_der_derived_kid(der: &[u8]) -> Result<Self, TokenError> {
        let key = Self::from_pkcs8_der("", der)?;
        let kid = derived_kid(&key.public_x);
        Ok(Self { kid, ..key })
    }

    /// Generates a fresh key named after its public key ([`derived_kid`]), as a configured key is, so
    /// its public key alone says its `kid` (`--jwt-published-public-keys`).
    pub fn generate_derived_kid() -> Result<Self, TokenError> {
        let key = Self::generate("")?;
        let kid = derived_kid(&key.public_x);
        Ok(Self { kid, ..key })
    }

    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK's `x`: base64url of its 32 raw bytes.
    pub fn public_x(&self) -> &str {
        &self.public_x
    }

    /// The PKCS#8 DER encoding of the private key, for storage.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public half as a JSON Web Key.
    pub fn public_jwk(&self) -> Jwk {
        jwk(&self.kid, &self.public_x)
    }

    /// Signs an access token for `user_id` in `session_id`, issued at `now` (seconds since the
    /// epoch) and living `ttl_seconds`.
    pub fn access_token(
        &self,
        user_id: &str,
        session_id: &str,
        role: &str,
        now: i64,
        ttl_seconds: i64,
    ) -> Result<String, TokenError> {
        let claims = AccessClaims {
            iss: ISSUER.to_owned(),
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            role: role.to_owned(),
            iat: now,
            exp: now.saturating_add(ttl_seconds),
            jti: uuid::Uuid::now_v7().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }
}

/// The `kid` of a key named after its public key: the first 16 characters of its JWK `x` (96 bits).
pub fn derived_kid(x: &str) -> String {
    x.chars().take(16).collect()
}

/// The JSON Web Key of a public Ed25519 key given as its JWK `x` (base64url of the 32 raw bytes),
/// named after it ([`derived_kid`]): a key that is published but never signs here, such as the
/// next or the previous key of a deployment whose keys are configured.
pub fn public_jwk(x: &str) -> Result<Jwk, TokenError> {
    let x = x.trim();
    let bytes = URL_SAFE_NO_PAD.decode(x).map_err(|_| TokenError::Key("a public key is not base64url".to_owned()))?;
    if bytes.len() != PUBLIC_KEY_LEN {
        return Err(TokenError::Key(format!("a public key has {} bytes, not {PUBLIC_KEY_LEN}", bytes.len())));
    }
    Ok(jwk(&derived_kid(x), x))
}

fn jwk(kid: &str, x: &str) -> Jwk {
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            key_id: Some(kid.to_owned()),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: x.to_owned(),
        }),
    }
}

/// Issues access tokens with one signing key.
#[derive(Debug)]
pub struct TokenIssuer {
    key: SigningKey,
    ttl_seconds: i64,
}

impl TokenIssuer {
    /// An issuer whose tokens live `ttl_seconds`.
    pub fn new(key: SigningKey, ttl_seconds: i64) -> Self {
        Self { key, ttl_seconds }
    }

    /// The lifetime of issued tokens, in seconds.
    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    /// The public key set that verifies this issuer's tokens.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: vec![self.key.public_jwk()] }
    }

    /// Signs an access token for `user_id` in `session_id`, issued at `now` (seconds since the epoch).
    pub fn issue(&self, user_id: &str, session_id: &str, role: &str, now: i64) -> Result<String, TokenError> {
        self.key.access_token(user_id, session_id, role, now, self.ttl_seconds)
    }
}

/// Verifies access tokens against a set of public keys.
#[derive(Clone)]
pub struct KeySet {
    keys: HashMap<String, PublicKey>,
    validation: Validation,
}

/// One public key of a [`KeySet`]: its JWK `x`, which tells two keys of one `kid` apart, and the
/// key built from it.
#[derive(Clone)]
struct PublicKey {
    x: String,
    decoding: DecodingKey,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("kids", &self.keys.keys().collect::<Vec<_>>()).finish()
    }
}

impl Default for KeySet {
    fn default() -> Self {
        Self::from_jwks(&JwkSet { keys: Vec::new() })
    }
}

impl KeySet {
    /// Builds a verifier from a key set, keeping only Ed25519 signing keys with a `kid`.
    pub fn from_jwks(jwks: &JwkSet) -> Self {
        let keys = jwks
            .keys
            .iter()
            .filter_map(|jwk| match (&jwk.common.key_id, &jwk.algorithm) {
                (Some(kid), AlgorithmParameters::OctetKeyPair(okp)) if okp.curve == EllipticCurve::Ed25519 => {
                    let decoding = DecodingKey::from_ed_components(&okp.x).ok()?;
                    Some((kid.clone(), PublicKey { x: okp.x.clone(), decoding }))
                }
                _ => None,
            })
            .collect();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        // Identity never sets `nbf`, but a token that carries one is held to it (RFC 7519 §4.1.5).
        validation.validate_nbf = true;
        Self { keys, validation }
    }

    /// Parses a JWKS JSON document.
    pub fn from_jwks_json(json: &str) -> Result<Self, TokenError> {
        let jwks: JwkSet = serde_json::from_str(json).map_err(|e| TokenError::Key(e.to_string()))?;
        Ok(Self::from_jwks(&jwks))
    }

    /// Whether a key with this id is known.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The ids of the keys, in no particular order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Whether every key of `other` is here too, the same key under the same id: then whatever
    /// `other` verified, this set verifies as well.
    pub fn covers(&self, other: &KeySet) -> bool {
        other.keys.iter().all(|(kid, key)| self.keys.get(kid).is_some_and(|mine| mine.x == key.x))
    }

    /// The `kid` of a token's header, without verifying anything.
    pub fn token_kid(token: &str) -> Result<String, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        header.kid.ok_or(TokenError::Malformed)
    }

    /// Verifies the signature (EdDSA only), `typ`, `iss` and `exp` and returns the claims.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(TokenError::WrongType);
        }
        let kid = header.kid.ok_or(TokenError::Malformed)?;
        let key = self.keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &self.validation)?;
        let claims = data.claims;
        // jsonwebtoken does not look at `iat`. A token issued in the future came from a signer with
        // a wrong clock or a stolen key minting tokens ahead; either way it is not valid yet.
        let latest_issue = i64::try_from(jsonwebtoken::get_current_timestamp() + LEEWAY_SECONDS).unwrap_or(i64::MAX);
        if claims.iat > latest_issue {
            return Err(TokenError::NotYetValid);
        }
        if uuid::Uuid::parse_str(&claims.sub).is_err() || uuid::Uuid::parse_str(&claims.sid).is_err() {
            return Err(TokenError::InvalidClaims);
        }
        Ok(claims)
    }
}

/// Tokens remembered as verified; when full the memory is emptied (a few MiB at most).
const VERIFIED_TOKENS_CAPACITY: usize = 16_384;

/// A [`KeySet`] that can be replaced while readers use it (keys are fetched from identity and
/// refreshed when a token names an unknown `kid`), with a memory of the tokens it verified.
///
/// A client sends the same access token on every request for its 15 minutes, and the Ed25519 check
/// is the largest cost of an authenticated request, so [`KeyStore::verify`] remembers tokens that
/// verified, keyed by the exact token string: a later request with the very same string skips the
/// signature check, never the expiry check. The memory is bounded and forgotten whenever a key
/// leaves the set (or changes); a key joining it, as the next key of a rotation does, keeps it.
#[derive(Debug, Clone, Default)]
pub struct KeyStore {
    inner: Arc<StoreInner>,
}

#[derive(Debug, Default)]
struct StoreInner {
    keys: RwLock<Arc<KeySet>>,
    verified: RwLock<HashMap<Box<str>, Arc<AccessClaims>>>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl KeyStore {
    /// A store holding `keys`.
    pub fn new(keys: KeySet) -> Self {
        let store = Self::default();
        store.replace(keys);
        store
    }

    /// The current key set.
    pub fn current(&self) -> Arc<KeySet> {
        match self.inner.keys.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the key set. The remembered tokens are forgotten when a key was withdrawn or
    /// changed (a token it verified must not pass any longer), and kept when keys were only added.
    pub fn replace(&self, keys: KeySet) {
        let keys = Arc::new(keys);
        let previous = match self.inner.keys.write() {
            Ok(mut guard) => std::mem::replace(&mut *guard, keys.clone()),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), keys.clone()),
        };
        if !keys.covers(&previous) {
            match self.inner.verified.write() {
                Ok(mut verified) => verified.clear(),
                Err(poisoned) => poisoned.into_inner().clear(),
            }
        }
    }

    /// Verifies `token` like [`KeySet::verify`], remembering the tokens that pass.
    pub fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        self.verify_at(token, unix_now())
    }

    fn verify_at(&self, token: &str, now: i64) -> Result<Arc<AccessClaims>, TokenError> {
        let expired = |claims: &AccessClaims| claims.exp < now - LEEWAY_SECONDS as i64;
        if let Ok(verified) = self.inner.verified.read()
            && let Some(claims) = verified.get(token)
        {
            if expired(claims) {
                return Err(TokenError::Invalid(jsonwebtoken::errors::ErrorKind::ExpiredSignature.into()));
            }
            return Ok(claims.clone());
        }
        let claims = Arc::new(self.current().verify(token)?);
        if let Ok(mut verified) = self.inner.verified.write() {
            if verified.len() >= VERIFIED_TOKENS_CAPACITY {
                // Expired tokens pile up here; dropping everything is simpler than an LRU and costs
                // one signature check per active client.
                verified.clear();
            }
            verified.insert(token.into(), claims.clone());
        }
        Ok(claims)
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.inner.verified.read().map(|v| v.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(SigningKey::generate("k1").unwrap(), 900)
    }

    const USER: &str = "0190b6a4-7c1e-7000-8000-000000000001";
    const SESSION: &str = "0190b6a4-7c1e-7000-8000-000000000002";

    #[test]
    fn a_token_verifies_with_the_issuers_key_set() {
        let issuer = issuer();
        let token = issuer.issue(USER, SESSION, "member", now()).unwrap();
        let claims = KeySet::from_jwks(&issuer.jwks()).verify(&token).unwrap();
        assert_eq!(claims.sub, USER);
        assert_eq!(claims.sid, SESSION);
        assert_eq!(claims.role, "member");
        assert_eq!(claims.iss, "ordo");
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn a_token_of_another_key_is_refused() {
        let token = issuer().issue(USER, SESSION, "member", now()).unwrap();
        let other = KeySet::from_jwks(&issuer().jwks());
        assert!(other.verify(&token).is_err());
    }

    #[test]
    fn a_token_issued_in_the_future_is_refused() {
        let issuer = issuer();
        let token = issuer.issue(USER, SESSION, "member", now() + 3600).unwrap();
        assert!(matches!(KeySet::from_jwks(&issuer.jwks()).verify(&token), Err(TokenError::NotYetValid)));
        let within_leeway = issuer.issue(USER, SESSION, "member", now() + 2).unwrap();
        assert!(KeySet::from_jwks(&issuer.jwks()).verify(&within_leeway).is_ok());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let issuer = issuer();
        let token = issuer.issue(USER, SESSION, "member", now() - 1000).unwrap();
        assert!(matches!(KeySet::from_jwks(&issuer.jwks()).verify(&token), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn alg_none_is_refused() {
        let issuer = issuer();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#);
        let payload = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"iss":"ordo","sub":"{USER}","sid":"{SESSION}","role":"admin","iat":{},"exp":{},"jti":"x"}}"#,
            now(),
            now() + 900
        ));
        let token = format!("{header}.{payload}.");
        assert!(KeySet::from_jwks(&issuer.jwks()).verify(&token).is_err());
    }

    #[test]
    fn an_hmac_token_signed_with_the_public_key_is_refused() {
        let issuer = issuer();
        let jwks = issuer.jwks();
        let AlgorithmParameters::OctetKeyPair(okp) = &jwks.keys[0].algorithm else { panic!("not OKP") };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(ACCESS_TOKEN_TYPE.into());
        header.kid = Some("k1".into());
        let claims = AccessClaims {
            iss: "ordo".into(),
            sub: USER.into(),
            sid: SESSION.into(),
            role: "admin".into(),
            iat: now(),
            exp: now() + 900,
            jti: "x".into(),
        };
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(okp.x.as_bytes()).unwrap()).unwrap();
        assert!(KeySet::from_jwks(&jwks).verify(&token).is_err());
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let issuer = issuer();
        let token = issuer.issue(USER, SESSION, "member", now()).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        parts[1] = URL_SAFE_NO_PAD.encode(payload.replace("member", "admin"));
        assert!(KeySet::from_jwks(&issuer.jwks()).verify(&parts.join(".")).is_err());
    }

    #[test]
    fn a_token_without_the_access_type_is_refused() {
        let key = SigningKey::generate("k1").unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("k1".into());
        let claims = AccessClaims {
            iss: "ordo".into(),
            sub: USER.into(),
            sid: SESSION.into(),
            role: "member".into(),
            iat: now(),
            exp: now() + 900,
            jti: "x".into(),
        };
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap();
        let keys = KeySet::from_jwks(&JwkSet { keys: vec![key.public_jwk()] });
        assert!(matches!(keys.verify(&token), Err(TokenError::WrongType)));
    }

    #[test]
    fn a_stored_key_signs_like_the_original() {
        let key = SigningKey::generate("k9").unwrap();
        let reloaded = SigningKey::from_pkcs8_der("k9", key.pkcs8_der()).unwrap();
        assert_eq!(reloaded.public_jwk(), key.public_jwk());
    }

    #[test]
    fn a_remembered_token_verifies_until_it_expires() {
        let issuer = issuer();
        let store = KeyStore::new(KeySet::from_jwks(&issuer.jwks()));
        let token = issuer.issue(USER, SESSION, "member", now()).unwrap();
        let claims = store.verify(&token).unwrap();
        assert_eq!(store.remembered(), 1);

        let exp = claims.exp;
        assert!(store.verify_at(&token, exp + LEEWAY_SECONDS as i64).is_ok());
        assert!(store.verify_at(&token, exp + LEEWAY_SECONDS as i64 + 1).is_err());
    }

    /// An issuer, and a store of its key that verified (and remembers) one of its tokens.
    fn store_that_verified_a_token() -> (TokenIssuer, KeyStore, String) {
        let issuer = issuer();
        let store = KeyStore::new(KeySet::from_jwks(&issuer.jwks()));
        let token = issuer.issue(USER, SESSION, "member", now()).unwrap();
        store.verify(&token).unwrap();
        (issuer, store, token)
    }

    #[test]
    fn only_the_exact_token_string_is_remembered() {
        let (_, store, token) = store_that_verified_a_token();

        let mut altered = token.clone();
        altered.push('x');
        assert!(store.verify(&altered).is_err());
        assert_eq!(store.remembered(), 1);
    }

    #[test]
    fn replacing_the_keys_forgets_remembered_tokens() {
        let (_, store, token) = store_that_verified_a_token();

        store.replace(KeySet::default());
        assert_eq!(store.remembered(), 0);
        assert!(matches!(store.verify(&token), Err(TokenError::UnknownKey)));
    }

    #[test]
    fn adding_a_key_keeps_remembered_tokens_and_changing_one_forgets_them() {
        let (issuer, store, token) = store_that_verified_a_token();
        let next = SigningKey::generate("k2").unwrap();

        store.replace(KeySet::from_jwks(&JwkSet { keys: vec![issuer.jwks().keys[0].clone(), next.public_jwk()] }));
        assert_eq!(store.remembered(), 1);

        // Another key under the same id: what the first verified must be checked again.
        store.replace(KeySet::from_jwks(&JwkSet { keys: vec![SigningKey::generate("k1").unwrap().public_jwk()] }));
        assert_eq!(store.remembered(), 0);
        assert!(store.verify(&token).is_err());
    }

    #[test]
    fn a_public_key_is_published_under_the_kid_its_private_key_would_have() {
        let key = SigningKey::generate_derived_kid().unwrap();
        let reloaded = SigningKey::from_pkcs8_der_derived_kid(key.pkcs8_der()).unwrap();

        assert_eq!(reloaded.kid(), key.kid());
        assert_eq!(public_jwk(key.public_x()).unwrap(), key.public_jwk());
        assert!(public_jwk("not base64!").is_err());
        assert!(public_jwk(&URL_SAFE_NO_PAD.encode([7_u8; 31])).is_err());
    }

    #[test]
    fn the_memory_of_verified_tokens_is_bounded() {
        let issuer = issuer();
        let store = KeyStore::new(KeySet::from_jwks(&issuer.jwks()));
        for _ in 0..=VERIFIED_TOKENS_CAPACITY {
            store.verify(&issuer.issue(USER, SESSION, "member", now()).unwrap()).unwrap();
        }
        assert!(store.remembered() <= VERIFIED_TOKENS_CAPACITY);
    }
}
