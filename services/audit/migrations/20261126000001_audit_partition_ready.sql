-- Make `audit_record` partitionable by `seq`, so that retention can archive whole partitions (README,
-- "Deployment"). MySQL and MariaDB require every unique key of a partitioned table to contain the
-- partitioning column (error 1503), and `audit_record_id` (unique on `id` alone) did not.
--
-- `id` stays indexed, not unique. One record per event is still guaranteed twice over: the consumer
-- claims the event in `processed_event` in the same transaction as the append (a concurrent
-- redelivery blocks on that row and is then dropped), and the append itself, under the lock of
-- `audit_head` that serialises every append, skips an event whose id is already in the log
-- (services/audit/src/infra/mysql.rs, `append_batch`).
ALTER TABLE audit_record DROP INDEX audit_record_id, ADD KEY audit_record_id (id);
