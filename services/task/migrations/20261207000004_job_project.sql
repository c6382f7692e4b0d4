-- A project's jobs that have not ended, found (and locked) without touching other projects' jobs when
-- the project is deleted.
ALTER TABLE job ADD KEY job_project (project_id, state);
