-- Signing keys that rotate without logging anyone out (src/domain/signing_key.rs): every key kept has
-- a generation and the time it starts to sign; it is published before that time and after the next
-- key takes over, until the tokens it signed have expired, and then deleted. Private keys are sealed
-- with the key-encryption key (src/infra/key_encryption.rs), or kept plain in development only.

-- `slot` keeps its name and the first key stays in slot 1, so the instances of the previous release
-- still running during a rolling deploy (they read the key once, at start) are not disturbed. It now
-- holds the key's generation: 1 for the first key, one more for each rotation. The primary key is what
-- makes two rotations started at once add one key, not two.
ALTER TABLE signing_key
    MODIFY slot INT UNSIGNED NOT NULL,
    -- PKCS#8 DER in the clear: rows of the previous release (sealed at the first start with a
    -- key-encryption key) and keys made in development without one.
    MODIFY private_der VARBINARY(256) NULL,
    -- nonce || AES-256-GCM ciphertext || tag of the PKCS#8 DER, the kid as associated data.
    ADD COLUMN sealed_der VARBINARY(512) NULL AFTER private_der,
    -- The first 8 bytes of a hash of the key-encryption key that sealed it, to name a wrong one.
    ADD COLUMN kek_id BINARY(8) NULL AFTER sealed_der,
    -- When it starts to sign; until then it is only published.
    ADD COLUMN activate_at DATETIME(6) NULL AFTER created_at,
    ADD UNIQUE KEY signing_key_kid (kid);

-- The key of the previous release has signed since it was made.
UPDATE signing_key SET activate_at = created_at WHERE activate_at IS NULL;

ALTER TABLE signing_key
    MODIFY activate_at DATETIME(6) NOT NULL,
    ADD CONSTRAINT signing_key_plain_or_sealed CHECK (
        (private_der IS NOT NULL AND sealed_der IS NULL AND kek_id IS NULL)
        OR (private_der IS NULL AND sealed_der IS NOT NULL AND kek_id IS NOT NULL)
    );
