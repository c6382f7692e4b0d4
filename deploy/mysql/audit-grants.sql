-- The audit service's runtime grants: what makes its log append-only in the database itself.
--
-- Run as an administrator (root locally, the RDS master user in AWS) AFTER `ordo-audit migrate` has
-- run as 'ordo_audit_migrate' (deploy/mysql/init.sql creates both users): MySQL and MariaDB refuse a
-- table-level GRANT on a table that does not exist yet (ERROR 1146). Run it again after any audit
-- migration that adds a table. compose.yaml runs it in its `audit-grants` step. Safe to run again.
--
--   mysql -h <host> -u <admin> -p < deploy/mysql/audit-grants.sql
--
-- 'ordo_audit' may append records and read them, never change or remove one: no UPDATE, DELETE,
-- ALTER or DROP on audit_record. Retention archives whole partitions instead (README, "Deployment").

-- The log: append and read. Before appending, the service looks the batch's event ids up with a
-- locking read (`SELECT ... LOCK IN SHARE MODE`), which needs SELECT only. Partitioning and archiving
-- it (README, "Deployment") is DDL for 'ordo_audit_migrate', never for this user.
GRANT SELECT, INSERT ON ordo_audit.audit_record TO 'ordo_audit'@'%';
-- The chain's head: locked (SELECT ... FOR UPDATE) and moved by every append; never deleted.
GRANT SELECT, UPDATE ON ordo_audit.audit_head TO 'ordo_audit'@'%';
-- The events library's bookkeeping: consumer deduplication, and the outbox every service schema has.
GRANT SELECT, INSERT, UPDATE, DELETE ON ordo_audit.processed_event TO 'ordo_audit'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON ordo_audit.outbox_event TO 'ordo_audit'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON ordo_audit.outbox_relay TO 'ordo_audit'@'%';
-- sqlx's migration ledger: at start the service checks that every migration has been applied.
GRANT SELECT ON ordo_audit._sqlx_migrations TO 'ordo_audit'@'%';
