-- The search index: one row per distinct word of a task (domain::search says what a word is). A
-- search of a project reads the words' rows in the project, most relevant first, and stops at the
-- page's end, instead of asking InnoDB's full-text index, which is not scoped by project and
-- collects and ranks every match of a word before the first page. Written in the transaction that
-- writes the task's title or description; gone with the task.

CREATE TABLE task_word (
    project_id BINARY(16)       NOT NULL,
    -- Lower case, at most 40 characters, compared byte for byte.
    word       VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    -- 2 when the word is in the title, 1 when it is only in the description.
    weight     TINYINT UNSIGNED NOT NULL,
    -- The task's number: newest first among tasks of equal weight (numbers are unique in a project).
    number     BIGINT           NOT NULL,
    task_id    BINARY(16)       NOT NULL,
    -- A word's tasks in a project, most relevant first, read in index order.
    PRIMARY KEY (project_id, word, weight, number),
    -- Whether one task holds a word (and rewriting a task's words).
    UNIQUE KEY task_word_task (task_id, word),
    CONSTRAINT task_word_task_fk FOREIGN KEY (task_id) REFERENCES task (id) ON DELETE CASCADE
) ENGINE = InnoDB;

ALTER TABLE task
    -- The version of the word rules the task's words were written by; 0: not yet (tasks from
    -- before this release, indexed in the background by every task service instance).
    ADD COLUMN words_version TINYINT UNSIGNED NOT NULL DEFAULT 0,
    ADD KEY task_words_version (words_version);

-- `task_text`, InnoDB's full-text index, is no longer read, but stays for one release: while a
-- rollout runs this release beside the one before, that one still searches through it. The next
-- release's migration drops it.
