-- A per-user sequence of notifications, in the order their transactions commit: the live stream
-- resumes after a notification by its `seq`, so a notification committed late can never fall behind
-- a resume point. Taking the next value locks the user's row until commit, which orders the commits
-- of one user's notifications (other users' go on in parallel).
CREATE TABLE notification_sequence (
    user_id  BINARY(16) NOT NULL PRIMARY KEY,
    last_seq BIGINT     NOT NULL
) ENGINE = InnoDB;

ALTER TABLE notification
    ADD COLUMN seq BIGINT NOT NULL DEFAULT 0 AFTER user_id,
    ADD KEY notification_user_seq (user_id, seq);
