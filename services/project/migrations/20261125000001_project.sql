-- The project service's schema: projects, memberships, and what it knows of disabled accounts.

CREATE TABLE project (
    id          BINARY(16)    NOT NULL PRIMARY KEY,          -- UUID v7
    -- `^[A-Z][A-Z0-9]{1,9}$`: upper-case ASCII only, so a case-insensitive collation changes nothing
    -- (and sqlx reads `_bin` collations as bytes).
    project_key VARCHAR(10)   CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    name        VARCHAR(200)  CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    description TEXT          CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NULL,
    archived    BOOLEAN       NOT NULL DEFAULT FALSE,
    created_by  BINARY(16)    NOT NULL,
    created_at  DATETIME(6)   NOT NULL,
    updated_at  DATETIME(6)   NOT NULL,
    version     BIGINT        NOT NULL DEFAULT 1,            -- optimistic concurrency (ETag)
    UNIQUE KEY project_key (project_key),
    -- The admin listing: `archived` filter, sorted by name, keyset on (name, id).
    KEY project_archived_name (archived, name, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE membership (
    project_id BINARY(16)  NOT NULL,
    user_id    BINARY(16)  NOT NULL,
    role       ENUM('owner', 'admin', 'member', 'viewer') NOT NULL,
    added_at   DATETIME(6) NOT NULL,
    version    BIGINT      NOT NULL DEFAULT 1,
    PRIMARY KEY (project_id, user_id),
    -- A user's projects (the member listing joins through it).
    KEY membership_user (user_id, project_id),
    -- The members listing, oldest first, keyset on (added_at, user_id).
    KEY membership_added (project_id, added_at, user_id),
    CONSTRAINT membership_project FOREIGN KEY (project_id) REFERENCES project (id) ON DELETE CASCADE
) ENGINE = InnoDB;

-- Accounts as far as identity's `identity.user_disabled` events tell: a disabled account keeps its
-- memberships but cannot act. `as_of` is the event's time, so a late, older event changes nothing.
CREATE TABLE user_status (
    user_id  BINARY(16)  NOT NULL PRIMARY KEY,
    disabled BOOLEAN     NOT NULL,
    as_of    DATETIME(6) NOT NULL
) ENGINE = InnoDB;
