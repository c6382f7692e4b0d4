-- Background jobs of a project (exports of its tasks): queued by a request, run by whichever
-- instance claims them first. A claim takes a queued job, or a running one whose lease has run out
-- (its instance died), with `FOR UPDATE SKIP LOCKED`, so two instances never take the same job;
-- each claim counts an attempt, and only the attempt that holds the job may record its progress or
-- its end. Never deleted with their project: they are the record of what was exported, and by whom.
CREATE TABLE job (
    id           BINARY(16)      NOT NULL PRIMARY KEY,   -- UUID v7
    project_id   BINARY(16)      NOT NULL,
    requester_id BINARY(16)      NOT NULL,
    kind         ENUM('export')  NOT NULL,
    -- What to do, as the service writes it (JSON): the format and the filter of an export.
    spec         TEXT            CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    state        ENUM('queued', 'running', 'done', 'failed', 'cancelled') NOT NULL,
    -- Claims so far; the running attempt's number.
    attempt      INT UNSIGNED    NOT NULL DEFAULT 0,
    -- Until when the running attempt holds the job; past it another instance may take it over.
    lease_until  DATETIME(6)     NULL,
    rows_done    BIGINT UNSIGNED NOT NULL DEFAULT 0,
    rows_total   BIGINT UNSIGNED NULL,
    -- The finished export's object and its size.
    result_key   VARCHAR(200)    CHARACTER SET ascii COLLATE ascii_general_ci NULL,
    result_bytes BIGINT UNSIGNED NULL,
    -- Why it failed, for its requester.
    error        VARCHAR(1000)   CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NULL,
    created_at   DATETIME(6)     NOT NULL,
    updated_at   DATETIME(6)     NOT NULL,
    finished_at  DATETIME(6)     NULL,
    -- The claim: the oldest queued job, or a running one whose lease ran out.
    KEY job_claim (state, created_at),
    -- A requester's jobs, newest first.
    KEY job_requester (requester_id, created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
