-- InnoDB's full-text index over title and description: no release reads it since the word index
-- (task_word) took over search, and the release before this one no longer does either, so a rollout
-- beside it loses nothing. Kept, it cost every create and every change of a title or description a
-- tokenisation into InnoDB's full-text cache and its syncs to the index's own tables.
ALTER TABLE task DROP INDEX task_text;
