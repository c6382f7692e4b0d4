-- Daily digests: how each user's notification mail goes out (at once, once a day, or not at all),
-- when their next digest is due, which local days had theirs, and which open tasks each user is
-- assigned with a due date (what a digest lists as due or overdue).

-- A user without a row gets their mail at once (the default mode).
CREATE TABLE email_schedule (
    user_id        BINARY(16)  NOT NULL PRIMARY KEY,
    mode           ENUM('immediate', 'daily', 'off') NOT NULL,
    -- The digest's hour of the day in `time_zone` (an IANA name).
    hour           TINYINT     NOT NULL,
    time_zone      VARCHAR(64) CHARACTER SET ascii NOT NULL,
    -- When the next digest is due, while the mode is daily.
    next_digest_at DATETIME(6) NULL,
    -- Where the next digest's notifications start: the last digest's time, or when daily was chosen.
    digest_since   DATETIME(6) NULL,
    -- The digesters' claim: the schedules due first.
    KEY email_schedule_due (next_digest_at)
) ENGINE = InnoDB;

-- One row per user and local day that had its digest (sent, or nothing to tell): the key makes a
-- second digest for one day impossible, whatever the clocks or the schedule did meanwhile.
CREATE TABLE digest (
    user_id    BINARY(16)  NOT NULL,
    local_date DATE        NOT NULL,
    -- The mail; NULL when there was nothing to tell.
    email_id   BINARY(16)  NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (user_id, local_date),
    -- The retention sweep.
    KEY digest_created (created_at)
) ENGINE = InnoDB;

-- A digest is a mail like the others, sent by the same senders; it names its local day, and lists
-- tasks beside its notifications (email_item).
ALTER TABLE email
    ADD COLUMN digest_date DATE NULL,
    ADD COLUMN more_tasks  INT  NOT NULL DEFAULT 0;

CREATE TABLE email_task (
    email_id BINARY(16)   NOT NULL,
    -- Its place in the digest (soonest due first).
    position INT          NOT NULL,
    task_key VARCHAR(24)  CHARACTER SET ascii NOT NULL,
    title    VARCHAR(500) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    due_at   DATETIME(6)  NOT NULL,
    PRIMARY KEY (email_id, position)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Each open task with a due date, once per assignee, kept with `task_due` (same transaction, same
-- version rules): a user's due and overdue tasks without reading every task.
CREATE TABLE due_assignment (
    user_id BINARY(16)  NOT NULL,
    task_id BINARY(16)  NOT NULL,
    due_at  DATETIME(6) NOT NULL,
    PRIMARY KEY (user_id, task_id),
    KEY due_assignment_due (user_id, due_at),
    KEY due_assignment_task (task_id)
) ENGINE = InnoDB;

-- The tasks recorded before this version whose reminder is still to fire: open, due ahead, assigned
-- (a row whose reminder fired may belong to a task closed since, so it waits for its next event).
INSERT INTO due_assignment (user_id, task_id, due_at)
SELECT SUBSTRING(t.assignees, n.i * 16 + 1, 16), t.task_id, t.due_at
FROM task_due t
JOIN (SELECT tens.d * 10 + ones.d AS i
      FROM (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
            UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) tens
      CROSS JOIN
           (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
            UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) ones
     ) n ON n.i * 16 < LENGTH(t.assignees)
WHERE t.remind_at IS NOT NULL AND t.due_at IS NOT NULL;
