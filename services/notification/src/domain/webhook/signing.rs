//! How a webhook delivery is signed, as Standard Webhooks defines it (the `standardwebhooks` crate
//! computes each signature): a delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature`, which holds `v1,<base64 of HMAC-SHA256 over "id.timestamp.body">` for each
//! secret that signs, separated by spaces. An endpoint's secret is shown to its owners as
//! `whsec_<base64>`; after a rotation the replaced secret signs beside the new one for
//! [`ROTATION_OVERLAP`], so a receiver still checking with the old one keeps accepting deliveries
//! while it is updated.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use standardwebhooks::Webhook;

use super::ROTATION_OVERLAP;

/// What a secret's text starts with.
const PREFIX: &str = "whsec_";

/// How many random bytes a secret the service makes holds.
pub const SECRET_BYTES: usize = 32;

/// The fewest bytes a secret may hold (Standard Webhooks: 24 to 64).
const MIN_SECRET_BYTES: usize = 24;

/// The most bytes a secret may hold.
const MAX_SECRET_BYTES: usize = 64;

/// An endpoint's signing key. Its `Debug` form never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

/// Why a secret's text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// It does not start with `whsec_`.
    #[error("a webhook secret starts with whsec_")]
    Prefix,
    /// What follows the prefix is not standard base64.
    #[error("a webhook secret is whsec_ followed by base64")]
    Encoding,
    /// The key is shorter than 24 bytes or longer than 64.
    #[error("a webhook secret holds 24 to 64 bytes")]
    Length,
}

impl Secret {
    /// A secret of `bytes`, which the caller draws from a cryptographically secure source.
    pub fn from_random(bytes: [u8; SECRET_BYTES]) -> Self {
        Self(bytes.to_vec())
    }

    /// The secret whose text is `text` (`whsec_<base64>`), as an owner may bring their own.
    ///
    /// # Errors
    ///
    /// [`SecretError`] for text that is not such a secret; the length is checked before decoding.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text.strip_prefix(PREFIX).ok_or(SecretError::Prefix)?;
        if encoded.len() > MAX_SECRET_BYTES.div_ceil(3) * 4 {
            return Err(SecretError::Length);
        }
        let key = STANDARD.decode(encoded).map_err(|_| SecretError::Encoding)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(SecretError::Length);
        }
        Ok(Self(key))
    }

    /// The secret's text, `whsec_<base64>`: what its owners are shown, once.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,<signature>` of one delivery.
    fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignError> {
        let webhook = Webhook::from_bytes(self.0.clone()).map_err(|_| SignError::Key)?;
        webhook.sign(id, timestamp, body).map_err(|_| SignError::Body)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why a delivery could not be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The body is not UTF-8 (a delivery's body is JSON).
    #[error("a webhook body must be UTF-8")]
    Body,
    /// The key was refused.
    #[error("the webhook secret cannot sign")]
    Key,
}

/// The secrets an endpoint signs with: its current one and, after a rotation, the one it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signing {
    current: Secret,
    /// The replaced secret and when it was replaced (Unix seconds).
    previous: Option<(Secret, i64)>,
}

impl Signing {
    /// Signing with `current` alone.
    pub fn new(current: Secret) -> Self {
        Self { current, previous: None }
    }

    /// Signing with `current`, which replaced `previous` at `rotated_at` (Unix seconds): `previous`
    /// signs too for deliveries sent within [`ROTATION_OVERLAP`] of that moment.
    pub fn rotated(current: Secret, previous: Secret, rotated_at: i64) -> Self {
        Self { current, previous: Some((previous, rotated_at)) }
    }

    /// The `webhook-signature` value of the delivery `id` sent at `timestamp` (Unix seconds, the
    /// `webhook-timestamp` sent with it) with `body`: the current secret's signature, then the
    /// replaced one's while the overlap lasts.
    ///
    /// # Errors
    ///
    /// [`SignError`] for a body that is not UTF-8.
    pub fn signature(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignError> {
        let mut value = self.current.sign(id, timestamp, body)?;
        if let Some((previous, rotated_at)) = &self.previous {
            let overlap = i64::try_from(ROTATION_OVERLAP.as_secs()).unwrap_or(i64::MAX);
            if timestamp < rotated_at.saturating_add(overlap) {
                value.push(' ');
                value.push_str(&previous.sign(id, timestamp, body)?);
            }
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use standardwebhooks::{HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP};
    use time::OffsetDateTime;
    use tonic::codegen::http::HeaderMap;

    use super::*;

    /// The example of the Standard Webhooks specification.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn secret(byte: u8) -> Secret {
        Secret::from_random([byte; SECRET_BYTES])
    }

    /// Whether a receiver holding `secret` accepts `body` sent with these headers now.
    fn accepts(secret: &Secret, id: &str, timestamp: i64, signature: &str, body: &[u8]) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_WEBHOOK_ID, id.parse().unwrap());
        headers.insert(HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string().parse().unwrap());
        headers.insert(HEADER_WEBHOOK_SIGNATURE, signature.parse().unwrap());
        Webhook::new(&secret.expose()).unwrap().verify(body, &headers).is_ok()
    }

    #[test]
    fn the_specifications_example_signs_as_published() {
        let signing = Signing::new(Secret::parse(SPEC_SECRET).unwrap());

        let signature = signing.signature("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);

        assert_eq!(signature.unwrap(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_receiver_with_the_secret_accepts_and_one_with_another_refuses() {
        let (ours, theirs) = (secret(1), secret(2));
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let body = br#"{"type":"task.created"}"#;

        let signature = Signing::new(ours.clone()).signature("msg_1", now, body).unwrap();

        assert!(accepts(&ours, "msg_1", now, &signature, body));
        assert!(!accepts(&theirs, "msg_1", now, &signature, body));
        assert!(!accepts(&ours, "msg_1", now, &signature, br#"{"type":"task.deleted"}"#), "another body");
        assert!(!accepts(&ours, "msg_2", now, &signature, body), "another id");
    }

    #[test]
    fn after_a_rotation_both_secrets_sign_for_a_day_then_only_the_new_one() {
        let (old, new) = (secret(1), secret(2));
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let day = i64::try_from(ROTATION_OVERLAP.as_secs()).unwrap();
        let body = br#"{"type":"task.updated"}"#;

        let during = Signing::rotated(new.clone(), old.clone(), now - day + 60).signature("msg_1", now, body).unwrap();
        let after = Signing::rotated(new.clone(), old.clone(), now - day).signature("msg_1", now, body).unwrap();

        assert_eq!(during.split(' ').count(), 2, "{during}");
        assert!(during.starts_with(&Signing::new(new.clone()).signature("msg_1", now, body).unwrap()));
        assert!(accepts(&new, "msg_1", now, &during, body) && accepts(&old, "msg_1", now, &during, body));
        assert_eq!(after.split(' ').count(), 1, "{after}");
        assert!(accepts(&new, "msg_1", now, &after, body));
        assert!(!accepts(&old, "msg_1", now, &after, body));
    }

    #[test]
    fn a_secret_reads_back_from_its_text() {
        let made = secret(7);

        let text = made.expose();

        assert!(text.starts_with("whsec_"), "{text}");
        assert_eq!(Secret::parse(&text), Ok(made));
    }

    #[test]
    fn text_that_is_not_a_secret_is_refused() {
        let short = format!("whsec_{}", STANDARD.encode([0_u8; 16]));
        let long = format!("whsec_{}", STANDARD.encode([0_u8; 65]));
        let huge = format!("whsec_{}", "A".repeat(1 << 20));

        assert_eq!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Err(SecretError::Prefix));
        assert_eq!(Secret::parse("whsec_not*base64!"), Err(SecretError::Encoding));
        assert_eq!(Secret::parse(&short), Err(SecretError::Length));
        assert_eq!(Secret::parse(&long), Err(SecretError::Length));
        assert_eq!(Secret::parse(&huge), Err(SecretError::Length));
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let made = secret(9);
        let signing = Signing::rotated(made.clone(), secret(8), 0);

        let shown = format!("{made:?} {signing:?}");

        assert!(!shown.contains(made.expose().trim_start_matches("whsec_")), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn a_body_that_is_not_utf8_is_not_signed() {
        assert_eq!(Signing::new(secret(1)).signature("msg_1", 0, &[0xff, 0xfe]), Err(SignError::Body));
    }
}
