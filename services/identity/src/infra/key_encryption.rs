//! The key-encryption key (`ORDO_KEY_ENCRYPTION_KEY`) that seals the signing keys kept in the schema,
//! so that a copy of the database (a backup, a replica, a dump on a laptop) holds no key that signs
//! tokens.
//!
//! AES-256-GCM from `ring` (an AEAD: a sealed key that was altered, or is opened with another
//! key-encryption key, is refused, never decrypted into garbage). A sealed key is
//! `nonce (12 bytes) || ciphertext || tag (16 bytes)`, the nonce random for each seal (a few seals per
//! key-encryption key, far from the 2^32 at which random 96-bit nonces would risk repeating). The
//! key's `kid` is the associated data: a sealed key moved to another row does not open there. Beside
//! each sealed key its row keeps the [`KeyEncryptionKey::id`] that sealed it, so a wrong key is named
//! as such instead of failing as a forgery.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use sha2::{Digest as _, Sha256};

/// The length of a key-encryption key, bytes.
pub const KEK_LEN: usize = 32;
/// The length of a key-encryption key's id, bytes.
pub const KEK_ID_LEN: usize = 8;
/// What the associated data starts with, before the `kid`.
const AAD_PREFIX: &[u8] = b"ordo signing key\0";

/// Why a key-encryption key or a sealed key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The key-encryption key is not base64.
    #[error("the key-encryption key is not base64")]
    NotBase64,
    /// The key-encryption key has the wrong length.
    #[error("the key-encryption key has {0} bytes, not {KEK_LEN} (make one with `openssl rand -base64 32`)")]
    WrongLength(usize),
    /// The system's random generator failed.
    #[error("no random nonce could be drawn")]
    Random,
    /// The key could not be sealed (it is far too long).
    #[error("the key could not be sealed")]
    Seal,
    /// The sealed key was altered, belongs to another `kid`, or another key-encryption key sealed it.
    #[error("the sealed key does not open: altered, moved, or sealed with another key-encryption key")]
    DoesNotOpen,
}

/// A key-encryption key: seals and opens signing keys.
pub struct KeyEncryptionKey {
    key: LessSafeKey,
    id: [u8; KEK_ID_LEN],
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEncryptionKey").field("id", &hex(&self.id)).finish_non_exhaustive()
    }
}

impl KeyEncryptionKey {
    /// Reads a key-encryption key: base64 of 32 random bytes.
    pub fn from_base64(encoded: &str) -> Result<Self, SealError> {
        let bytes = STANDARD.decode(encoded.trim()).map_err(|_| SealError::NotBase64)?;
        let bytes: [u8; KEK_LEN] = bytes.as_slice().try_into().map_err(|_| SealError::WrongLength(bytes.len()))?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::WrongLength(KEK_LEN))?;
        // A hash of a 256-bit random key reveals nothing of it; it only tells keys apart.
        let digest = Sha256::new().chain_update(b"ordo key-encryption key id\0").chain_update(bytes).finalize();
        let mut id = [0; KEK_ID_LEN];
        id.copy_from_slice(&digest[..KEK_ID_LEN]);
        Ok(Self { key: LessSafeKey::new(key), id })
    }

    /// The id kept beside each key this one seals.
    pub fn id(&self) -> [u8; KEK_ID_LEN] {
        self.id
    }

    /// The id as hexadecimal, for messages.
    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }

    /// Seals the private key (`plaintext`) of key `kid`.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0_u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), aad(kid), &mut in_out)
            .map_err(|_| SealError::Seal)?;
        Ok([nonce.as_slice(), &in_out].concat())
    }

    /// Opens what [`KeyEncryptionKey::seal`] sealed for `kid`.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SealError::DoesNotOpen);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::DoesNotOpen)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self.key.open_in_place(nonce, aad(kid), &mut in_out).map_err(|_| SealError::DoesNotOpen)?.len();
        in_out.truncate(plaintext);
        Ok(in_out)
    }
}

fn aad(kid: &str) -> Aad<Vec<u8>> {
    Aad::from([AAD_PREFIX, kid.as_bytes()].concat())
}

/// Bytes as lower-case hexadecimal (key-encryption key ids in messages).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn kek(byte: u8) -> KeyEncryptionKey {
        KeyEncryptionKey::from_base64(&STANDARD.encode([byte; KEK_LEN])).unwrap()
    }

    const DER: &[u8] = b"a PKCS#8 document, as far as sealing cares";

    #[test]
    fn a_sealed_key_opens_with_its_key_encryption_key_and_kid() {
        let kek = kek(1);
        let sealed = kek.seal("kid-1", DER).unwrap();

        assert_eq!(kek.open("kid-1", &sealed).unwrap(), DER);
        assert!(!sealed.windows(DER.len()).any(|window| window == DER), "the plaintext must not show");
        assert_eq!(sealed.len(), NONCE_LEN + DER.len() + 16);
    }

    #[test]
    fn each_seal_draws_a_fresh_nonce() {
        let kek = kek(1);
        assert_ne!(kek.seal("kid-1", DER).unwrap(), kek.seal("kid-1", DER).unwrap());
    }

    #[test]
    fn another_key_encryption_key_does_not_open_it_and_has_another_id() {
        let sealed = kek(1).seal("kid-1", DER).unwrap();

        assert_eq!(kek(2).open("kid-1", &sealed), Err(SealError::DoesNotOpen));
        assert_ne!(kek(1).id(), kek(2).id());
        assert_eq!(kek(1).id(), kek(1).id());
    }

    #[test]
    fn a_tampered_sealed_key_does_not_open() {
        let kek = kek(1);
        let sealed = kek.seal("kid-1", DER).unwrap();
        for at in [0, NONCE_LEN, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[at] ^= 0x01;
            assert_eq!(kek.open("kid-1", &tampered), Err(SealError::DoesNotOpen), "byte {at} flipped");
        }
        assert_eq!(kek.open("kid-1", &sealed[..sealed.len() - 1]), Err(SealError::DoesNotOpen));
        assert_eq!(kek.open("kid-1", &sealed[..NONCE_LEN + 15]), Err(SealError::DoesNotOpen));
        assert_eq!(kek.open("kid-1", &[]), Err(SealError::DoesNotOpen));
    }

    #[test]
    fn a_sealed_key_moved_to_another_kid_does_not_open() {
        let kek = kek(1);
        let sealed = kek.seal("kid-1", DER).unwrap();

        assert_eq!(kek.open("kid-2", &sealed), Err(SealError::DoesNotOpen));
    }

    #[test]
    fn a_key_encryption_key_must_be_base64_of_32_bytes() {
        assert_eq!(KeyEncryptionKey::from_base64("not base64!").err(), Some(SealError::NotBase64));
        assert_eq!(KeyEncryptionKey::from_base64(&STANDARD.encode([0; 16])).err(), Some(SealError::WrongLength(16)));
        assert!(KeyEncryptionKey::from_base64(&format!(" {}\n", STANDARD.encode([9; 32]))).is_ok());
    }

    #[test]
    fn its_debug_output_shows_only_the_id() {
        let kek = kek(3);
        assert_eq!(format!("{kek:?}"), format!("KeyEncryptionKey {{ id: {:?}, .. }}", kek.id_hex()));
    }
}
