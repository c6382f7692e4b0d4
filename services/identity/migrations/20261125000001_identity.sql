-- Identity's schema: accounts, sessions, refresh tokens and the keys that sign access tokens.

CREATE TABLE user_account (
    id            BINARY(16)   NOT NULL PRIMARY KEY,          -- UUID v7
    -- Trimmed and lower-cased before it gets here; the case-insensitive collation is a second guard
    -- so that no two accounts can differ only in letter case.
    email         VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    display_name  VARCHAR(100) CHARACTER SET utf8mb4 NOT NULL,
    password_hash VARCHAR(255) NOT NULL,                      -- argon2id PHC string
    role          ENUM('admin', 'member') NOT NULL,
    disabled      BOOLEAN      NOT NULL DEFAULT FALSE,
    created_at    DATETIME(6)  NOT NULL,
    updated_at    DATETIME(6)  NOT NULL,
    version       BIGINT       NOT NULL DEFAULT 1,            -- optimistic concurrency (ETag)
    UNIQUE KEY user_account_email (email),
    KEY user_account_display_name (display_name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- One row at most: whoever inserts it registers the first account, which becomes an admin. The
-- primary key makes the claim atomic under concurrent registrations.
CREATE TABLE first_account (
    slot    TINYINT    NOT NULL PRIMARY KEY,
    user_id BINARY(16) NOT NULL
) ENGINE = InnoDB;

CREATE TABLE session (
    id            BINARY(16)  NOT NULL PRIMARY KEY,
    user_id       BINARY(16)  NOT NULL,
    created_at    DATETIME(6) NOT NULL,
    -- Moves forward on every refresh (sliding expiry).
    expires_at    DATETIME(6) NOT NULL,
    revoked_at    DATETIME(6) NULL,
    -- logout, refresh_reuse, password_changed, user_disabled
    revoke_reason VARCHAR(32) NULL,
    ip            VARCHAR(64)  NOT NULL DEFAULT '',
    user_agent    VARCHAR(512) NOT NULL DEFAULT '',
    KEY session_user (user_id, revoked_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE refresh_token (
    -- SHA-256 of the opaque token; the token itself is never stored.
    token_hash BINARY(32)  NOT NULL PRIMARY KEY,
    session_id BINARY(16)  NOT NULL,
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    -- Set when the token is exchanged; presenting it again is reuse and revokes the session.
    spent_at   DATETIME(6) NULL,
    KEY refresh_token_session (session_id)
) ENGINE = InnoDB;

-- Ed25519 keys that sign access tokens. Slot 1 holds the active key; every instance signs with it.
CREATE TABLE signing_key (
    slot         TINYINT      NOT NULL PRIMARY KEY,
    kid          VARCHAR(64)  NOT NULL,
    private_der  VARBINARY(256) NOT NULL,                    -- PKCS#8 DER
    created_at   DATETIME(6)  NOT NULL
) ENGINE = InnoDB;
