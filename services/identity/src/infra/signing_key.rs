//! Where the access-token signing keys come from: the `signing_key` table, every private key sealed
//! with the key-encryption key ([`KeyEncryptionKey`]) (or, in development only, kept plain), or the one
//! key the configuration gives (`ORDO_JWT_PRIVATE_KEY`), which never rotates here.
//!
//! A key kept plain by an earlier release (or by development) is sealed the first time an instance
//! with a key-encryption key reads it, in place; so is a key sealed with the previous key-encryption
//! key (`ORDO_PREVIOUS_KEY_ENCRYPTION_KEY`) when the key-encryption key changes. One `UPDATE` that only
//! a row not yet sealed with the current key matches, so instances starting together seal it once.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ordo_auth::SigningKey;
use ordo_platform::db::utc_datetime as utc;
use ordo_service::db_error;
use sqlx::MySqlPool;
use time::OffsetDateTime;

use super::key_encryption::{KEK_ID_LEN, KeyEncryptionKey, hex};
use crate::app::ports::{SigningKeyStore, StoredSigningKey};
use crate::app::{AppError, Result};

/// The most keys read. A rotation adds one key and retired keys are deleted, so two or three are
/// kept; more than this is a fault, and the newest are read.
const MAX_KEYS: i64 = 32;

/// How the private keys are kept in the schema.
#[derive(Debug)]
pub enum KeyProtection {
    /// Sealed with the `current` key-encryption key; keys sealed with the `previous` one are opened
    /// with it and sealed again with the current one.
    Sealed {
        /// Seals every key.
        current: Box<KeyEncryptionKey>,
        /// The key-encryption key being replaced, if it is.
        previous: Option<Box<KeyEncryptionKey>>,
    },
    /// Plain: development only (`--allow-plaintext-signing-keys`).
    Plaintext,
}

/// The signing keys in the `signing_key` table.
#[derive(Debug)]
pub struct MySqlSigningKeys {
    pool: MySqlPool,
    protection: KeyProtection,
}

fn corrupt(generation: u32, what: &str) -> AppError {
    AppError::Internal(anyhow::anyhow!("signing key {generation}: {what}"))
}

impl MySqlSigningKeys {
    /// The keys of `pool`'s schema, kept as `protection` says.
    pub fn new(pool: MySqlPool, protection: KeyProtection) -> Self {
        Self { pool, protection }
    }

    /// The private key of a row: opened, or read plain (and then sealed, with a key-encryption key).
    async fn private_key(
        &self,
        generation: u32,
        kid: &str,
        plain: Option<Vec<u8>>,
        sealed: Option<Vec<u8>>,
        kek_id: Option<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        match (plain, sealed, &self.protection) {
            (Some(der), None, KeyProtection::Plaintext) => Ok(der),
            (Some(der), None, KeyProtection::Sealed { current, .. }) => {
                self.seal_in_place(generation, kid, &der, current).await?;
                Ok(der)
            }
            (None, Some(sealed), KeyProtection::Sealed { current, previous }) => {
                let sealed_with = |kek: &KeyEncryptionKey| kek_id.as_deref() == Some(kek.id().as_slice());
                if sealed_with(current) {
                    return current.open(kid, &sealed).map_err(|error| corrupt(generation, &error.to_string()));
                }
                match previous.as_deref().filter(|previous| sealed_with(previous)) {
                    Some(previous) => {
                        let der =
                            previous.open(kid, &sealed).map_err(|error| corrupt(generation, &error.to_string()))?;
                        self.seal_in_place(generation, kid, &der, current).await?;
                        Ok(der)
                    }
                    None => Err(corrupt(
                        generation,
                        &format!(
                            "sealed with the key-encryption key {}, not with the one given ({})",
                            kek_id.map(|id| hex(&id)).unwrap_or_default(),
                            current.id_hex()
                        ),
                    )),
                }
            }
            (None, Some(_), KeyProtection::Plaintext) => {
                Err(corrupt(generation, "sealed, and no key-encryption key is given (ORDO_KEY_ENCRYPTION_KEY)"))
            }
            _ => Err(corrupt(generation, "neither plain nor sealed")),
        }
    }

    /// Seals a row in place with `kek`, unless it is sealed with it already (by another instance).
    async fn seal_in_place(&self, generation: u32, kid: &str, der: &[u8], kek: &KeyEncryptionKey) -> Result<()> {
        let sealed = kek.seal(kid, der).map_err(|error| corrupt(generation, &error.to_string()))?;
        let kek_id = kek.id();
        let sealed_now = sqlx::query!(
            "UPDATE signing_key SET sealed_der = ?, kek_id = ?, private_der = NULL
             WHERE slot = ? AND NOT (kek_id <=> ?)",
            sealed,
            kek_id.as_slice(),
            generation,
            kek_id.as_slice()
        )
        .execute(&self.pool)
        .await
        .map_err(db_error)?
        .rows_affected()
            == 1;
        if sealed_now {
            tracing::info!(generation, kid, kek = kek.id_hex(), "sealed a signing key with the key-encryption key");
        }
        Ok(())
    }
}

#[async_trait]
impl SigningKeyStore for MySqlSigningKeys {
    #[tracing::instrument(skip_all)]
    async fn keys(&self) -> Result<Vec<StoredSigningKey>> {
        let rows = sqlx::query!(
            r#"SELECT slot AS "generation: u32", kid, private_der, sealed_der, kek_id, activate_at
               FROM signing_key ORDER BY slot DESC LIMIT ?"#,
            MAX_KEYS
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            let der = self.private_key(row.generation, &row.kid, row.private_der, row.sealed_der, row.kek_id).await?;
            let key = SigningKey::from_pkcs8_der(row.kid, &der)
                .map_err(|error| corrupt(row.generation, &error.to_string()))?;
            keys.push(StoredSigningKey { generation: row.generation, activate_at: row.activate_at.assume_utc(), key });
        }
        Ok(keys)
    }

    #[tracing::instrument(skip_all, fields(generation))]
    async fn add(&self, generation: u32, activate_at: OffsetDateTime, key: &SigningKey) -> Result<bool> {
        let (plain, sealed, kek_id) = match &self.protection {
            KeyProtection::Plaintext => (Some(key.pkcs8_der()), None, None),
            KeyProtection::Sealed { current: kek, .. } => {
                let sealed =
                    kek.seal(key.kid(), key.pkcs8_der()).map_err(|error| corrupt(generation, &error.to_string()))?;
                (None, Some(sealed), Some(kek.id()))
            }
        };
        let inserted = sqlx::query!(
            "INSERT INTO signing_key (slot, kid, private_der, sealed_der, kek_id, created_at, activate_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            generation,
            key.kid(),
            plain,
            sealed,
            kek_id.as_ref().map(<[u8; KEK_ID_LEN]>::as_slice),
            utc(OffsetDateTime::now_utc()),
            utc(activate_at)
        )
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(error) if ordo_platform::db::is_unique_violation(&error) => Ok(false),
            Err(error) => Err(db_error(error)),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn delete(&self, generations: &[u32]) -> Result<()> {
        for generation in generations {
            sqlx::query!("DELETE FROM signing_key WHERE slot = ?", generation)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }
}

/// The one key the configuration gives (`ORDO_JWT_PRIVATE_KEY`): it signs from the start of time and
/// is never rotated here (a rotation is a change of configuration, README: signing-key rotation).
#[derive(Debug)]
pub struct ConfiguredSigningKey {
    key: SigningKey,
}

impl ConfiguredSigningKey {
    /// Reads the key: base64 of its PKCS#8 DER encoding; its `kid` is derived from its public key, so
    /// every instance given it names it alike.
    pub fn from_base64(encoded: &str) -> anyhow::Result<Self> {
        let der = STANDARD.decode(encoded.trim()).map_err(|_| anyhow::anyhow!("the signing key is not base64"))?;
        Ok(Self { key: SigningKey::from_pkcs8_der_derived_kid(&der)? })
    }
}

#[async_trait]
impl SigningKeyStore for ConfiguredSigningKey {
    async fn keys(&self) -> Result<Vec<StoredSigningKey>> {
        Ok(vec![StoredSigningKey { generation: 1, activate_at: OffsetDateTime::UNIX_EPOCH, key: self.key.clone() }])
    }

    async fn add(&self, _generation: u32, _activate_at: OffsetDateTime, _key: &SigningKey) -> Result<bool> {
        Err(AppError::Conflict(std::borrow::Cow::Borrowed(
            "the signing key is configured (ORDO_JWT_PRIVATE_KEY): rotate it by configuration",
        )))
    }

    async fn delete(&self, _generations: &[u32]) -> Result<()> {
        Ok(())
    }
}
