-- A user's page version: moved by every change of their notifications (arrival, seen, read, read
-- all, archive, delete, retention), in the same transaction, beside their counts. A page kept in an
-- instance's memory is served only while the version it was read at is still the committed one.
ALTER TABLE notification_sequence ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
