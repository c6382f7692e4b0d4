-- The notification service's schema: the notifications themselves, each user's preferences, and
-- what the events told it about users and memberships (to match mentions and to leave out whoever
-- lost access to a project).

CREATE TABLE notification (
    id          BINARY(16)    NOT NULL PRIMARY KEY,          -- UUID v7: newest first is id descending
    user_id     BINARY(16)    NOT NULL,
    -- The event it came from; one notification of a kind per user and event.
    event_id    BINARY(16)    NOT NULL,
    kind        VARCHAR(32)   CHARACTER SET ascii NOT NULL,
    title       VARCHAR(300)  CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    body        VARCHAR(1000) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    project_id  BINARY(16)    NOT NULL,
    task_id     BINARY(16)    NULL,
    task_key    VARCHAR(24)   CHARACTER SET ascii NULL,
    actor_id    BINARY(16)    NULL,
    created_at  DATETIME(6)   NOT NULL,
    seen_at     DATETIME(6)   NULL,
    read_at     DATETIME(6)   NULL,
    archived_at DATETIME(6)   NULL,
    UNIQUE KEY notification_event (event_id, user_id, kind),
    -- The list (newest first, archived or not) and the badge counts.
    KEY notification_user (user_id, archived_at, id),
    KEY notification_unread (user_id, archived_at, read_at),
    KEY notification_unseen (user_id, archived_at, seen_at),
    -- The retention sweep.
    KEY notification_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- The kinds a user turned off (or on again) per channel; a kind without a row is on.
CREATE TABLE preference (
    user_id BINARY(16)  NOT NULL,
    channel ENUM('in_app', 'email') NOT NULL,
    kind    VARCHAR(32) CHARACTER SET ascii NOT NULL,
    enabled BOOLEAN     NOT NULL,
    PRIMARY KEY (user_id, channel, kind)
) ENGINE = InnoDB;

-- Users as identity's events describe them. `as_of` is the time of the last status event applied,
-- so a late, older event changes nothing.
CREATE TABLE directory_user (
    user_id      BINARY(16)   NOT NULL PRIMARY KEY,
    email        VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL DEFAULT '',
    display_name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL DEFAULT '',
    disabled     BOOLEAN      NOT NULL DEFAULT FALSE,
    as_of        DATETIME(6)  NULL
) ENGINE = InnoDB;

-- Memberships as the project service's events describe them; a removed one stays, `member` false,
-- so a recipient who left is known to have no access. A user with no row is not known to have lost
-- access (the event that added them may still be on its way).
CREATE TABLE directory_member (
    project_id BINARY(16)  NOT NULL,
    user_id    BINARY(16)  NOT NULL,
    member     BOOLEAN     NOT NULL,
    as_of      DATETIME(6) NOT NULL,
    PRIMARY KEY (project_id, user_id)
) ENGINE = InnoDB;
