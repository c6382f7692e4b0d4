-- Outgoing webhooks: a project's endpoints, each event on its way to each endpoint that wants it (a
-- delivery, queued in the consumer's transaction), and every attempt to send one (the log).
CREATE TABLE webhook_endpoint (
    id               BINARY(16)    NOT NULL PRIMARY KEY,        -- UUID v7
    project_id       BINARY(16)    NOT NULL,
    url              VARCHAR(2048) CHARACTER SET ascii NOT NULL,
    description      VARCHAR(500)  CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL DEFAULT '',
    -- Event types and `prefix.*` patterns, space-separated (none contains a space).
    event_types      VARCHAR(5100) CHARACTER SET ascii NOT NULL,
    active           BOOLEAN       NOT NULL,
    -- Why the service turned it off; NULL while active or when a person did.
    disabled_reason  ENUM('gone', 'failing') NULL,
    -- Deliveries per second at most; 0 for no limit.
    rate_limit       SMALLINT UNSIGNED NOT NULL DEFAULT 0,
    -- `whsec_...`; after a rotation the replaced secret signs beside it until `rotated_at` + 24 h.
    secret           VARCHAR(100)  CHARACTER SET ascii NOT NULL,
    previous_secret  VARCHAR(100)  CHARACTER SET ascii NULL,
    rotated_at       DATETIME(6)   NULL,
    -- The first failure since the last success; five days of failures disable the endpoint.
    failing_since    DATETIME(6)   NULL,
    -- The instance sending its deliveries, until `lease_until` (renewed while it sends): one sender
    -- per endpoint keeps its throttle and the order of a task's events across instances.
    lease_holder     BINARY(16)    NULL,
    lease_until      DATETIME(6)   NULL,
    created_by       BINARY(16)    NOT NULL,
    created_at       DATETIME(6)   NOT NULL,
    updated_at       DATETIME(6)   NOT NULL,
    version          BIGINT        NOT NULL,
    KEY webhook_endpoint_project (project_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- How many endpoints each project has: creates lock the project's row (not a range of the index,
-- whose gap locks would deadlock two creates), so the cap holds under concurrent requests.
CREATE TABLE webhook_project (
    project_id       BINARY(16)    NOT NULL PRIMARY KEY,
    endpoints        INT           NOT NULL
) ENGINE = InnoDB;

CREATE TABLE webhook_delivery (
    id               BINARY(16)    NOT NULL PRIMARY KEY,        -- UUID v7: an endpoint's order
    endpoint_id      BINARY(16)    NOT NULL,
    -- The `webhook-id` header: the event's id (a redelivery keeps it; a ping has its own).
    message_id       BINARY(16)    NOT NULL,
    event_type       VARCHAR(100)  CHARACTER SET ascii NOT NULL,
    -- The task (or project) whose events an endpoint receives in order.
    order_key        BINARY(16)    NOT NULL,
    -- The JSON body, as signed and sent.
    body             MEDIUMTEXT    CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    state            ENUM('pending', 'delivered', 'failed') NOT NULL,
    attempts         SMALLINT      NOT NULL DEFAULT 0,
    -- When it is next tried; NULL once it is not pending.
    next_attempt_at  DATETIME(6)   NULL,
    created_at       DATETIME(6)   NOT NULL,
    -- The senders' look for endpoints with deliveries due.
    KEY webhook_delivery_due (state, next_attempt_at),
    -- An endpoint's next deliveries in order.
    KEY webhook_delivery_endpoint (endpoint_id, state, id),
    -- The earlier deliveries of the same task still pending.
    KEY webhook_delivery_order (endpoint_id, state, order_key, id),
    -- The retention sweep.
    KEY webhook_delivery_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE webhook_attempt (
    id               BINARY(16)    NOT NULL PRIMARY KEY,        -- UUID v7: the log's order
    endpoint_id      BINARY(16)    NOT NULL,
    delivery_id      BINARY(16)    NOT NULL,
    attempt          SMALLINT      NOT NULL,
    attempted_at     DATETIME(6)   NOT NULL,
    outcome          ENUM('delivered', 'failed', 'timeout', 'unreachable') NOT NULL,
    status_code      SMALLINT UNSIGNED NULL,
    latency_ms       INT UNSIGNED  NOT NULL,
    response_excerpt VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL DEFAULT '',
    KEY webhook_attempt_endpoint (endpoint_id, id),
    KEY webhook_attempt_delivery (delivery_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
