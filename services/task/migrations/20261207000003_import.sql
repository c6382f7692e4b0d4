-- Imports of tasks from a file, run as jobs beside the exports. An import's key is the digest of
-- its project and file: a file imported into a project once (or being imported) is not imported
-- again; a failed or cancelled import frees its key (NULL, which a unique index admits many times),
-- so the file may be sent again. Its spec (the file's object, the accounts that are not members,
-- the rows it refused) may be long: MEDIUMTEXT.
ALTER TABLE job
    MODIFY kind ENUM('export', 'import') NOT NULL,
    MODIFY spec MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    ADD COLUMN import_key BINARY(32) NULL AFTER spec,
    ADD UNIQUE KEY job_import (import_key);

-- The task each imported row became, written in the transaction that creates it: an attempt that
-- takes over an import finds the parents of the rows left to import here, and skips the rows done.
CREATE TABLE import_task (
    job_id  BINARY(16)   NOT NULL,
    -- The row's number among the file's tasks, from 1.
    row_no  INT UNSIGNED NOT NULL,
    task_id BINARY(16)   NOT NULL,
    PRIMARY KEY (job_id, row_no)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
