-- Each user's badge counts, kept with their notification sequence and moved in the same transaction
-- as every change of their notifications (see src/infra/counts.rs), so a list reads one row instead
-- of counting every unread notification.
ALTER TABLE notification_sequence
    ADD COLUMN unread BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN unseen BIGINT NOT NULL DEFAULT 0;

-- Every user with notifications has a sequence row, then counts that match their notifications.
INSERT INTO notification_sequence (user_id, last_seq)
SELECT user_id, MAX(seq) FROM notification GROUP BY user_id
ON DUPLICATE KEY UPDATE last_seq = notification_sequence.last_seq;

UPDATE notification_sequence s SET
    s.unread = (SELECT COUNT(*) FROM notification n
                 WHERE n.user_id = s.user_id AND n.archived_at IS NULL AND n.read_at IS NULL),
    s.unseen = (SELECT COUNT(*) FROM notification n
                 WHERE n.user_id = s.user_id AND n.archived_at IS NULL AND n.seen_at IS NULL);

-- The retention sweep takes one user's oldest notifications at a time.
ALTER TABLE notification ADD KEY notification_user_created (user_id, created_at);
