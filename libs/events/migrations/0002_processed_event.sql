-- Consumer-side deduplication: delivery is at least once, so a consumer records every event it has
-- applied in the same transaction as the effect, and drops an event it finds here already.

CREATE TABLE processed_event (
    -- The consumer's name (`ConsumerConfig::consumer_name`), so several consumers can share a schema.
    consumer     VARCHAR(100) NOT NULL,
    -- The envelope's UUID v7 as 16 bytes.
    event_id     BINARY(16)   NOT NULL,
    -- UTC; lets an operator prune old rows once redelivery of such old events is impossible.
    processed_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (consumer, event_id)
) ENGINE = InnoDB;
