//! argon2id password hashing (OWASP's parameters: m = 19456 KiB, t = 2, p = 1). Hashing is slow on
//! purpose, so it runs on the blocking pool, and a semaphore bounds how many run at once: a burst of
//! logins queues here instead of taking every core from the other requests.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::app::ports::PasswordHasher;
use crate::app::{AppError, Result};

/// Password verifications argon2 actually ran, by `outcome` (`match` or `mismatch`).
pub const VERIFICATIONS_METRIC: &str = "ordo_identity_password_verifications_total";

/// How long a hash may wait for a free slot before the request is refused as overloaded.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// Hashes with argon2id on at most `concurrency` blocking threads at once.
#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    params: Params,
    slots: Arc<Semaphore>,
}

impl Argon2Hasher {
    /// A hasher with OWASP's argon2id parameters.
    pub fn new(concurrency: usize) -> Result<Self> {
        let params = Params::new(19_456, 2, 1, None).map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
        Ok(Self { params, slots: Arc::new(Semaphore::new(concurrency.max(1))) })
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce(Argon2<'static>) -> T + Send + 'static) -> Result<T> {
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| AppError::Unavailable("password hashing is saturated; retry shortly".into()))?
            .map_err(|e| AppError::Internal(e.into()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        let result = tokio::task::spawn_blocking(move || {
            let result = work(argon2);
            drop(permit);
            result
        })
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
        Ok(result)
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: String) -> Result<String> {
        // A fresh random salt per hash, from the operating system's generator.
        self.run(move |argon2| argon2.hash_password(password.as_bytes()).map(|h| h.to_string()))
            .await?
            .map_err(|e| AppError::Internal(anyhow::anyhow!("argon2: {e}")))
    }

    async fn verify(&self, password: String, hash: String) -> Result<bool> {
        self.run(move |argon2| match PasswordHash::new(&hash) {
            Ok(parsed) => {
                let matches = argon2.verify_password(password.as_bytes(), &parsed).is_ok();
                // Counted here, where argon2 runs, so the count is of guesses actually checked: the
                // login throttle's promise (at most its budget per email and window) can be watched
                // from outside, whatever path led here.
                let outcome = if matches { "match" } else { "mismatch" };
                metrics::counter!(VERIFICATIONS_METRIC, "outcome" => outcome).increment(1);
                matches
            }
            // Not a PHC string: nothing was verified, so nothing is counted.
            Err(_) => false,
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let hasher = Argon2Hasher::new(1).unwrap();
        let hash = hasher.hash("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify("correct horse battery".into(), hash.clone()).await.unwrap());
        assert!(!hasher.verify("wrong horse battery".into(), hash).await.unwrap());
    }

    #[tokio::test]
    async fn a_malformed_hash_never_verifies() {
        let hasher = Argon2Hasher::new(1).unwrap();
        assert!(!hasher.verify("anything at all".into(), "not a phc string".into()).await.unwrap());
    }
}
