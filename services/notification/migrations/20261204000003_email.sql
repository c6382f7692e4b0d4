-- Email: each mail to one user is opened by the first notification of a coalescing window (per
-- recipient and task, or project for a project notification), gathers the notifications of that
-- window, and is claimed when the window ends, then sent once.
CREATE TABLE email (
    id             BINARY(16)   NOT NULL PRIMARY KEY,          -- UUID v7
    user_id        BINARY(16)   NOT NULL,
    -- The task (or project) of the mail while its window is open; NULL once claimed, so the next
    -- notification about it opens another mail.
    open_key       BINARY(16)   NULL,
    -- open: gathering; sending: claimed by a sender until `claimed_until`; retry: SES answered
    -- "not now"; sent; failed: refused for good or out of attempts; unknown: its sender died while
    -- SES may have accepted it (never sent again, see the README).
    state          ENUM('open', 'sending', 'retry', 'sent', 'failed', 'unknown') NOT NULL,
    -- When it may next be claimed: the end of its window, then the time of each retry.
    due_at         DATETIME(6)  NOT NULL,
    attempts       SMALLINT     NOT NULL DEFAULT 0,
    claimed_until  DATETIME(6)  NULL,
    -- Notifications past the most one mail lists (counted, not listed).
    more_items     INT          NOT NULL DEFAULT 0,
    ses_message_id VARCHAR(100) CHARACTER SET ascii NULL,
    error          VARCHAR(500) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NULL,
    created_at     DATETIME(6)  NOT NULL,
    sent_at        DATETIME(6)  NULL,
    UNIQUE KEY email_open (user_id, open_key),
    -- The senders' claim, and the sweep of claims whose sender died.
    KEY email_due (state, due_at),
    -- The retention sweep.
    KEY email_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- What a mail lists: the notifications of its window, as they read when stored.
CREATE TABLE email_item (
    email_id        BINARY(16)    NOT NULL,
    notification_id BINARY(16)    NOT NULL,                    -- UUID v7: the mail lists them in order
    kind            VARCHAR(32)   CHARACTER SET ascii NOT NULL,
    title           VARCHAR(300)  CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    body            VARCHAR(1000) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    task_key        VARCHAR(24)   CHARACTER SET ascii NULL,
    PRIMARY KEY (email_id, notification_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
