-- One row per user who has asked for a job: a request that queues a job locks its requester's row
-- first, so one request of a user at a time counts their unfinished jobs and queues one, and the cap
-- on them holds however many requests arrive at once.
CREATE TABLE job_turn (
    requester_id BINARY(16) NOT NULL PRIMARY KEY
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
