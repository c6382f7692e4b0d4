-- Attachments: what each file is, here; its bytes, in object storage under `object_key`.
CREATE TABLE attachment (
    id           BINARY(16)      NOT NULL PRIMARY KEY,   -- UUID v7
    task_id      BINARY(16)      NOT NULL,
    project_id   BINARY(16)      NOT NULL,
    filename     VARCHAR(255)    CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    content_type VARCHAR(255)    CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    size_bytes   BIGINT UNSIGNED NOT NULL,
    -- Lower-case hex SHA-256 of the bytes.
    sha256       CHAR(64)        CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    uploaded_by  BINARY(16)      NOT NULL,
    created_at   DATETIME(6)     NOT NULL,
    -- `attachments/<project_id>/<task_id>/<id>`.
    object_key   VARCHAR(200)    CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    -- A task's attachments, oldest first, keyset on (created_at, id).
    KEY attachment_task (task_id, created_at, id),
    KEY attachment_project (project_id),
    CONSTRAINT attachment_task FOREIGN KEY (task_id) REFERENCES task (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Objects to delete from storage once `due_at` has passed. Deleting an attachment, a task or a
-- project adds its objects here in the same transaction (due at once); an upload adds its object
-- before the first byte (due in an hour) and the transaction that records the attachment removes
-- it. A sweeper deletes what is due, so no object outlives its attachment whatever crashes when.
CREATE TABLE object_deletion (
    object_key VARCHAR(200) CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL PRIMARY KEY,
    due_at     DATETIME(6)  NOT NULL,
    KEY object_deletion_due (due_at)
) ENGINE = InnoDB;
