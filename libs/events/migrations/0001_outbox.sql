-- Transactional outbox: a service writes its change and the event about it in one transaction, and
-- the relay publishes the rows to RabbitMQ afterwards. See libs/events/src/relay.rs.

CREATE TABLE outbox_event (
    -- Publish order. AUTO_INCREMENT values are taken at INSERT time, not at COMMIT, so the relay
    -- publishes in id order; events of one aggregate keep their order as long as the producer locks
    -- the aggregate row before enqueuing (the usual `SELECT ... FOR UPDATE` / `UPDATE` first).
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    -- The envelope's UUID v7 as 16 bytes; the AMQP `message_id` and the consumers' dedup key.
    event_id     BINARY(16)      NOT NULL,
    -- `<context>.<event>`, the envelope's `type`; the topic-exchange routing key.
    routing_key  VARCHAR(255)    NOT NULL,
    -- The protobuf-encoded `ordo.events.v1.Envelope`, published byte for byte.
    payload      MEDIUMBLOB      NOT NULL,
    -- UTC, when the producer's transaction wrote the row.
    created_at   DATETIME(6)     NOT NULL,
    -- UTC, when the broker confirmed the message; NULL while it still has to be published.
    published_at DATETIME(6)     NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_outbox_event_event_id (event_id),
    -- The relay's scan: `WHERE published_at IS NULL ORDER BY id`, and the backlog gauge.
    KEY ix_outbox_event_published_at_id (published_at, id)
) ENGINE = InnoDB;

-- One row that relays lock with `FOR UPDATE SKIP LOCKED` for the length of a round: the instance that
-- gets it publishes, the others skip the round. That serialises publishing across instances, which
-- is what keeps the order, without making anyone wait on a lock.
CREATE TABLE outbox_relay (
    -- Always 1; the CHECK keeps a second row from ever appearing.
    id TINYINT UNSIGNED NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT ck_outbox_relay_single_row CHECK (id = 1)
) ENGINE = InnoDB;

INSERT INTO outbox_relay (id) VALUES (1);
