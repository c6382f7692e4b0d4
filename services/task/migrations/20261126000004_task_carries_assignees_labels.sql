-- Every read of a task wants its assignees and labels; carrying them on the task row makes a get
-- one primary-key lookup and a list one range scan, with no follow-up queries. `task_assignee` and
-- `task_label` stay the truth the filters (`assignee_id`, `label`) and the member clean-up use;
-- every write of a task writes both in one transaction.

ALTER TABLE task
    -- The assignees' ids, 16 bytes each, in the order given (at most 20).
    ADD COLUMN assignee_ids VARBINARY(320) NOT NULL DEFAULT '' AFTER reporter_id,
    -- The labels as a JSON array of strings, in the order given (at most 20 of 50 characters).
    ADD COLUMN labels TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL DEFAULT '[]' AFTER assignee_ids;

SET SESSION group_concat_max_len = 1048576;

UPDATE task t
SET assignee_ids = COALESCE(
        (SELECT GROUP_CONCAT(a.user_id ORDER BY a.ordinal SEPARATOR '') FROM task_assignee a WHERE a.task_id = t.id),
        ''),
    labels = COALESCE(
        (SELECT JSON_ARRAYAGG(l.label ORDER BY l.ordinal) FROM task_label l WHERE l.task_id = t.id),
        '[]');
