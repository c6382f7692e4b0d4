-- The audit log: one record per domain or security event, in one hash chain.
--
-- Append-only: the service has no UPDATE or DELETE statement on `audit_record`, and in deployment its
-- database user holds only INSERT and SELECT on it (deploy/mysql/init.sql). Retention is by archiving
-- whole partitions of old records, never by deleting rows (see the README).

CREATE TABLE audit_record (
    -- 1, 2, 3, ... with no gap: the chain's order.
    seq         BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    -- The event's id (UUID v7): one record per event.
    id          BINARY(16)   NOT NULL,
    occurred_at DATETIME(6)  NOT NULL,
    -- The event type, e.g. `identity.login_failed`.
    action      VARCHAR(100) CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    actor_id    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    producer    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    entity_type VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    entity_id   VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    project_id  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    ip          VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    user_agent  VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    -- The event's payload as JSON text, exactly the bytes the hash covers.
    data        MEDIUMTEXT   CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    prev_hash   BINARY(32)   NOT NULL,
    hash        BINARY(32)   NOT NULL,
    UNIQUE KEY audit_record_id (id),
    -- The filters of `GET /audit/events`, each with keyset order by seq.
    KEY audit_record_actor (actor_id, seq),
    KEY audit_record_action (action, seq),
    KEY audit_record_entity (entity_type, entity_id, seq),
    KEY audit_record_project (project_id, seq),
    KEY audit_record_time (occurred_at, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- The end of the chain: one row, locked by every append so that appends from any number of
-- consumers and instances are serialised, and read by `verify` to notice records cut off the end.
CREATE TABLE audit_head (
    slot TINYINT         NOT NULL PRIMARY KEY,
    seq  BIGINT UNSIGNED NOT NULL,
    hash BINARY(32)      NOT NULL
) ENGINE = InnoDB;

INSERT INTO audit_head (slot, seq, hash) VALUES (1, 0, REPEAT(CHAR(0), 32));
