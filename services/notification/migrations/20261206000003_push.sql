-- Web Push: the subscriptions of each user's browsers and apps, and the messages on their way to
-- them (queued with the notification, in the same transaction).
ALTER TABLE preference MODIFY channel ENUM('in_app', 'email', 'push') NOT NULL;

CREATE TABLE push_subscription (
    id            BINARY(16)    NOT NULL PRIMARY KEY,          -- UUID v7
    user_id       BINARY(16)    NOT NULL,
    endpoint      VARCHAR(2048) CHARACTER SET ascii NOT NULL,
    -- base64url, as browsers give them.
    p256dh        VARCHAR(100)  CHARACTER SET ascii NOT NULL,
    auth          VARCHAR(40)   CHARACTER SET ascii NOT NULL,
    created_at    DATETIME(6)   NOT NULL,
    UNIQUE KEY push_subscription_endpoint (user_id, endpoint)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- How many subscriptions each user has: a subscribe locks the user's own row, so the cap holds
-- under concurrent requests without gap locks.
CREATE TABLE push_user (
    user_id       BINARY(16)    NOT NULL PRIMARY KEY,
    subscriptions INT           NOT NULL
) ENGINE = InnoDB;

CREATE TABLE push_message (
    id              BINARY(16)    NOT NULL PRIMARY KEY,        -- UUID v7
    subscription_id BINARY(16)    NOT NULL,
    -- The JSON sent (encrypted for the subscription when sent).
    payload         VARCHAR(3072) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    attempts        SMALLINT      NOT NULL DEFAULT 0,
    due_at          DATETIME(6)   NOT NULL,
    -- Claimed by a sender until then.
    claimed_until   DATETIME(6)   NULL,
    KEY push_message_due (due_at),
    KEY push_message_subscription (subscription_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
