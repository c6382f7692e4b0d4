-- Retention of the dedup records: each consumer deletes its own rows older than its retention
-- (`ConsumerConfig::dedup_retention`), oldest first, through this index.
ALTER TABLE processed_event ADD KEY ix_processed_event_consumer_processed_at (consumer, processed_at);
