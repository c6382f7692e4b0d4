-- The due-date sorts put tasks without a due date last in both directions. Sorting by the
-- expression `due_at IS NULL` cannot use an index, so it is a stored column, and each direction has
-- an index that reads the board in that order (MariaDB 10.8+ honours DESC in index definitions).
ALTER TABLE task
    ADD COLUMN due_missing BOOLEAN AS (due_at IS NULL) STORED,
    ADD KEY task_due_order (project_id, due_missing, due_at, id),
    ADD KEY task_due_order_desc (project_id, due_missing, due_at DESC, id DESC);
