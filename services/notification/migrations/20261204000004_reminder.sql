-- Due-date reminders: each task as its latest event showed it (a late, older event changes nothing),
-- and when its assignees are to be reminded of its due date.
CREATE TABLE task_due (
    task_id         BINARY(16)   NOT NULL PRIMARY KEY,
    project_id      BINARY(16)   NOT NULL,
    task_key        VARCHAR(24)  CHARACTER SET ascii NOT NULL,
    title           VARCHAR(500) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    -- The assignees' ids, 16 bytes each.
    assignees       VARBINARY(1600) NOT NULL,
    due_at          DATETIME(6)  NULL,
    -- The version of the task the row shows; a deleted task keeps its row (fields cleared) with a
    -- version above any of its events.
    version         BIGINT       NOT NULL,
    -- When the reminder fires; NULL when none is armed.
    remind_at       DATETIME(6)  NULL,
    -- The due date of the last reminder fired, so one due date is reminded of once.
    reminded_due_at DATETIME(6)  NULL,
    KEY task_due_remind (remind_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
