-- The task service's schema: tasks, their assignees, labels, watchers and comments, and the
-- per-project counter that numbers tasks and serialises board moves.

-- One row per project: the last task number handed out. Creates increment it inside their
-- transaction (a rollback gives the number back, so there are no gaps), and its row lock is the
-- project's board lock: creates and moves of one project take it first.
CREATE TABLE task_counter (
    project_id  BINARY(16) NOT NULL PRIMARY KEY,
    last_number BIGINT     NOT NULL
) ENGINE = InnoDB;

CREATE TABLE task (
    id               BINARY(16)   NOT NULL PRIMARY KEY,     -- UUID v7
    project_id       BINARY(16)   NOT NULL,
    number           BIGINT       NOT NULL,
    -- The project's key (`^[A-Z][A-Z0-9]{1,9}$`; keys never change), so `ORDO-42` is found here.
    project_key      VARCHAR(10)  CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    title            VARCHAR(500) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    description      MEDIUMTEXT   CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NULL,
    status           ENUM('backlog', 'todo', 'in_progress', 'in_review', 'done', 'cancelled') NOT NULL,
    -- 0 (`none`) to 4 (`urgent`), so it sorts by urgency.
    priority         TINYINT UNSIGNED NOT NULL,
    due_at           DATETIME(6)  NULL,
    start_at         DATETIME(6)  NULL,
    estimate_minutes INT          NULL,
    parent_id        BINARY(16)   NULL,
    reporter_id      BINARY(16)   NOT NULL,
    -- Board order: digits and lower-case letters only, compared bytewise. `ascii_general_ci` folds
    -- case only, which changes nothing for this alphabet (and sqlx reads `_bin` collations as bytes).
    position         VARCHAR(1000) CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    created_at       DATETIME(6)  NOT NULL,
    updated_at       DATETIME(6)  NOT NULL,
    -- Set exactly while the status is `done`.
    completed_at     DATETIME(6)  NULL,
    version          BIGINT       NOT NULL DEFAULT 1,       -- optimistic concurrency (ETag)
    UNIQUE KEY task_number (project_id, number),
    UNIQUE KEY task_position (project_id, position),
    KEY task_key (project_key, number),
    -- One per sort of the list; keyset on (sort key, id).
    KEY task_created (project_id, created_at, id),
    KEY task_updated (project_id, updated_at, id),
    KEY task_due (project_id, due_at, id),
    KEY task_priority (project_id, priority, id),
    KEY task_status (project_id, status, created_at, id),
    KEY task_parent (parent_id, created_at, id),
    FULLTEXT KEY task_text (title, description),
    -- Subtasks go with their parent (at most five levels, well within InnoDB's cascade depth).
    CONSTRAINT task_parent_fk FOREIGN KEY (parent_id) REFERENCES task (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE task_assignee (
    task_id    BINARY(16)       NOT NULL,
    user_id    BINARY(16)       NOT NULL,
    project_id BINARY(16)       NOT NULL,
    -- The order the assignees were given in.
    ordinal    SMALLINT UNSIGNED NOT NULL,
    -- The task's `created_at`, so a user's tasks across projects are read newest first from the index.
    created_at DATETIME(6)      NOT NULL,
    PRIMARY KEY (task_id, user_id),
    KEY task_assignee_user (user_id, created_at, task_id),
    -- Unassigning a user who left a project.
    KEY task_assignee_project_user (project_id, user_id),
    CONSTRAINT task_assignee_task FOREIGN KEY (task_id) REFERENCES task (id) ON DELETE CASCADE
) ENGINE = InnoDB;

CREATE TABLE task_label (
    task_id    BINARY(16)  NOT NULL,
    -- The order the labels were given in (labels are unique per task, case-insensitively).
    ordinal    SMALLINT UNSIGNED NOT NULL,
    project_id BINARY(16)  NOT NULL,
    label      VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    PRIMARY KEY (task_id, ordinal),
    -- The label filter.
    KEY task_label_filter (project_id, label, task_id),
    CONSTRAINT task_label_task FOREIGN KEY (task_id) REFERENCES task (id) ON DELETE CASCADE
) ENGINE = InnoDB;

CREATE TABLE task_watcher (
    task_id    BINARY(16) NOT NULL,
    user_id    BINARY(16) NOT NULL,
    project_id BINARY(16) NOT NULL,
    PRIMARY KEY (task_id, user_id),
    -- Removing a user who left a project.
    KEY task_watcher_project_user (project_id, user_id),
    CONSTRAINT task_watcher_task FOREIGN KEY (task_id) REFERENCES task (id) ON DELETE CASCADE
) ENGINE = InnoDB;

CREATE TABLE comment (
    id         BINARY(16)  NOT NULL PRIMARY KEY,            -- UUID v7
    task_id    BINARY(16)  NOT NULL,
    project_id BINARY(16)  NOT NULL,
    author_id  BINARY(16)  NOT NULL,
    -- Up to 20,000 characters (beyond TEXT's 64 KiB in utf8mb4).
    body       MEDIUMTEXT  CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    version    BIGINT      NOT NULL DEFAULT 1,
    -- A task's comments, oldest first, keyset on (created_at, id).
    KEY comment_task (task_id, created_at, id),
    CONSTRAINT comment_task FOREIGN KEY (task_id) REFERENCES task (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
