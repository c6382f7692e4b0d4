-- Each task's status history: one row per change of its status, the first for the status it was
-- created with. Written in the transaction of the create or edit (so a report never sees a status
-- the task did not commit), never edited, gone with the task. Flow reports (created, completed and
-- open per interval, the time from in progress to done) read it by project and time; a task's
-- activity history can build on it.

CREATE TABLE task_status_change (
    id          BIGINT UNSIGNED  NOT NULL AUTO_INCREMENT PRIMARY KEY,
    task_id     BINARY(16)       NOT NULL,
    project_id  BINARY(16)       NOT NULL,
    -- NULL in a task's first row: the status it was created with (or, for the tasks that existed
    -- before the history was kept, the status they had then; see below).
    from_status ENUM('backlog', 'todo', 'in_progress', 'in_review', 'done', 'cancelled') NULL,
    to_status   ENUM('backlog', 'todo', 'in_progress', 'in_review', 'done', 'cancelled') NOT NULL,
    changed_at  DATETIME(6)      NOT NULL,
    -- The user who made the change; NULL only in the rows below, written for tasks older than this
    -- table, whose author is not known.
    actor_id    BINARY(16)       NULL,
    -- A project's changes over a range of time, for its reports, read from the index alone.
    KEY task_status_change_project (project_id, changed_at, task_id, to_status),
    -- One task's history, in order.
    KEY task_status_change_task (task_id, id),
    CONSTRAINT task_status_change_task_fk FOREIGN KEY (task_id) REFERENCES task (id) ON DELETE CASCADE
) ENGINE = InnoDB;

-- The tasks that exist already get one row: their status now, with no earlier status. Its time is
-- when they were completed for a done task (so completions are counted when they happened) and
-- their creation otherwise. Their earlier changes were never recorded: a report counts them as
-- created and completed, but finds no time in progress for them.
INSERT INTO task_status_change (task_id, project_id, from_status, to_status, changed_at, actor_id)
SELECT id, project_id, NULL, status, COALESCE(completed_at, created_at), NULL
FROM task
ORDER BY created_at, id;
