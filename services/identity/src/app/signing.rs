//! The keys that sign access tokens, as one identity instance holds them: read from the
//! [`SigningKeyStore`] at start and every reload interval, each token signed by the key the schedule
//! ([`KeySchedule`]) says is active at the moment it is issued, the key set published from the same
//! schedule, and rotations started here.
//!
//! Several instances run side by side and never talk to each other about keys: each reads the same
//! rows, and time moves a key from next to active to previous to retired the same way for all of them.
//! A rotation publishes its key longer than the reload interval before it signs, so every instance has
//! read it by then, and every verifier has fetched it if the lead is also longer than their refresh
//! interval and the key set's HTTP cache lifetime (README: signing-key rotation).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ordo_auth::{Jwk, JwkSet, KeySet, KeyStore, LEEWAY_SECONDS, SigningKey};
use time::{Duration, OffsetDateTime};
use tokio_util::sync::CancellationToken;

use super::ports::SigningKeyStore;
use super::{AppError, Result};
use crate::domain::{KeySchedule, Rotation, ScheduledKey};

/// How many times a rotation is planned again after losing a race to another one.
const ROTATION_ATTEMPTS: usize = 3;

/// The outcome of starting a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationOutcome {
    /// The key that will sign.
    pub kid: String,
    /// Its public key, as a JWK's `x`.
    pub public_x: String,
    /// Its generation.
    pub generation: u32,
    /// When it starts to sign.
    pub activate_at: OffsetDateTime,
    /// `false` when a rotation was already under way (this key was waiting to sign) or another one
    /// started at the same moment added it: nothing was added.
    pub created: bool,
}

/// The signing keys of this instance. Cheap to clone (one shared state).
#[derive(Clone)]
pub struct SigningKeys {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn SigningKeyStore>,
    ring: RwLock<Arc<KeyRing>>,
    /// What this instance verifies tokens with (its own RPCs): the published keys.
    verifier: KeyStore,
    ttl_seconds: i64,
    /// Keys published beside ours that never sign here (configured).
    also_published: Vec<Jwk>,
}

/// The keys read at one reload, with their schedule.
struct KeyRing {
    schedule: KeySchedule,
    keys: HashMap<String, SigningKey>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("schedule", &self.ring().schedule)
            .field("ttl_seconds", &self.inner.ttl_seconds)
            .finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Reads the keys of `store` at `now`, as they are (none, to start a first rotation on); tokens
    /// live `ttl_seconds`; `also_published` are published beside the keys of `store` and never sign.
    pub async fn load(
        store: Arc<dyn SigningKeyStore>,
        ttl_seconds: i64,
        also_published: Vec<Jwk>,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let empty = KeyRing { schedule: KeySchedule::new(Vec::new(), Duration::ZERO), keys: HashMap::new() };
        let keys = Self {
            inner: Arc::new(Inner {
                store,
                ring: RwLock::new(Arc::new(empty)),
                verifier: KeyStore::default(),
                ttl_seconds,
                also_published,
            }),
        };
        keys.reload(now).await?;
        Ok(keys)
    }

    /// Makes sure a key signs at `now`: on the first start, adds one that signs at once (instances
    /// starting together race for generation 1; the losers read the winner's key).
    pub async fn with_a_signing_key(self, now: OffsetDateTime) -> Result<Self> {
        if self.ring().schedule.keys().is_empty() {
            self.rotate(now, Duration::ZERO).await?;
        }
        if self.ring().schedule.signing_at(now).is_none() {
            return Err(AppError::Internal(anyhow::anyhow!("no signing key is active")));
        }
        Ok(self)
    }

    fn ring(&self) -> Arc<KeyRing> {
        match self.inner.ring.read() {
            Ok(ring) => ring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// How long a key stays published after it last signed: until the last token it signed has
    /// expired, and for the leeway verifiers give `exp`.
    fn published_after_use(&self) -> Duration {
        Duration::seconds(self.inner.ttl_seconds.max(0).saturating_add_unsigned(LEEWAY_SECONDS))
    }

    /// Reads the keys again and publishes what the schedule says at `now`.
    #[tracing::instrument(skip_all)]
    pub async fn reload(&self, now: OffsetDateTime) -> Result<()> {
        let stored = self.inner.store.keys().await?;
        let mut scheduled = Vec::with_capacity(stored.len());
        let mut keys = HashMap::with_capacity(stored.len());
        for stored in stored {
            let kid = stored.key.kid().to_owned();
            scheduled.push(ScheduledKey {
                generation: stored.generation,
                kid: kid.clone(),
                activate_at: stored.activate_at,
            });
            keys.insert(kid, stored.key);
        }
        let ring = Arc::new(KeyRing { schedule: KeySchedule::new(scheduled, self.published_after_use()), keys });
        let previous = match self.inner.ring.write() {
            Ok(mut current) => std::mem::replace(&mut *current, ring.clone()),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), ring.clone()),
        };
        if previous.schedule != ring.schedule {
            tracing::info!(
                keys = ?ring.schedule.states_at(now).map(|(key, state)| (&key.kid, key.activate_at, state)).collect::<Vec<_>>(),
                "read the signing keys"
            );
        }
        self.inner.verifier.replace(KeySet::from_jwks(&self.jwks(now)));
        Ok(())
    }

    /// Deletes the keys retired at `now`. Only the serving instances do, with the access-token
    /// lifetime they sign with; a `rotate-key` run with another lifetime configured must not.
    async fn delete_retired(&self, now: OffsetDateTime) -> Result<()> {
        let retired: Vec<u32> = self.ring().schedule.retired_at(now).iter().map(|key| key.generation).collect();
        if !retired.is_empty() {
            self.inner.store.delete(&retired).await?;
            tracing::info!(?retired, "deleted retired signing keys");
        }
        Ok(())
    }

    /// Reloads every `interval` until `shutdown`, deleting retired keys (a failed reload keeps the
    /// keys read before).
    pub async fn keep_fresh(self, interval: std::time::Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            let now = OffsetDateTime::now_utc();
            let reloaded = match self.reload(now).await {
                Ok(()) => self.delete_retired(now).await,
                Err(error) => Err(error),
            };
            if let Err(error) = reloaded {
                tracing::warn!(%error, "could not read the signing keys or delete retired ones; signing with those read before");
            }
        }
    }

    /// Starts a rotation at `now`: adds a key that is published for `lead` before it signs, unless
    /// one is already waiting to sign. Safe when started twice at once: one key is added.
    #[tracing::instrument(skip_all)]
    pub async fn rotate(&self, now: OffsetDateTime, lead: Duration) -> Result<RotationOutcome> {
        for _ in 0..ROTATION_ATTEMPTS {
            self.reload(now).await?;
            let ring = self.ring();
            let (generation, activate_at) = match ring.schedule.rotation(now, lead) {
                Rotation::Pending(pending) => {
                    let key = ring.keys.get(&pending.kid).map(SigningKey::public_x).unwrap_or_default();
                    return Ok(RotationOutcome {
                        kid: pending.kid.clone(),
                        public_x: key.to_owned(),
                        generation: pending.generation,
                        activate_at: pending.activate_at,
                        created: false,
                    });
                }
                Rotation::Start { generation, activate_at } => (generation, activate_at),
            };
            // Named after its public key, so that the key alone tells its `kid`: a deployment moving
            // from a configured key publishes it ahead with `--jwt-published-public-keys`.
            let key = SigningKey::generate_derived_kid().map_err(|error| AppError::Internal(error.into()))?;
            let created = self.inner.store.add(generation, activate_at, &key).await?;
            if created {
                tracing::info!(kid = key.kid(), generation, %activate_at, "started a signing-key rotation");
            }
            // When another rotation took this generation first, its key is the rotation: one key is
            // added, whoever adds it.
            self.reload(now).await?;
            let ring = self.ring();
            let added = ring.schedule.keys().iter().find(|key| key.generation == generation);
            if let Some((added, key)) = added.and_then(|added| Some((added, ring.keys.get(&added.kid)?))) {
                return Ok(RotationOutcome {
                    kid: added.kid.clone(),
                    public_x: key.public_x().to_owned(),
                    generation,
                    activate_at: added.activate_at,
                    created,
                });
            }
        }
        Err(AppError::Contention)
    }

    /// Signs an access token issued at `now` with the key active then.
    pub fn issue(&self, user_id: &str, session_id: &str, role: &str, now: OffsetDateTime) -> Result<String> {
        let ring = self.ring();
        let key = ring
            .schedule
            .signing_at(now)
            .and_then(|active| ring.keys.get(&active.kid))
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no signing key is active")))?;
        key.access_token(user_id, session_id, role, now.unix_timestamp(), self.inner.ttl_seconds)
            .map_err(|error| AppError::Internal(error.into()))
    }

    /// The lifetime of access tokens, seconds.
    pub fn ttl_seconds(&self) -> i64 {
        self.inner.ttl_seconds
    }

    /// The key set published at `now`: the active key first, then the next and the previous ones,
    /// then the configured keys that never sign here.
    pub fn jwks(&self, now: OffsetDateTime) -> JwkSet {
        let ring = self.ring();
        let mut keys: Vec<Jwk> = ring
            .schedule
            .published_at(now)
            .into_iter()
            .filter_map(|scheduled| ring.keys.get(&scheduled.kid))
            .map(SigningKey::public_jwk)
            .collect();
        for jwk in &self.inner.also_published {
            if !keys.iter().any(|key| key.common.key_id == jwk.common.key_id) {
                keys.push(jwk.clone());
            }
        }
        JwkSet { keys }
    }

    /// What this instance verifies tokens with: the published keys, as of the last reload.
    pub fn verifier(&self) -> KeyStore {
        self.inner.verifier.clone()
    }
}
