-- Ordo's schemas and database users: one schema per service, one user per service, each user with
-- privileges on its own schema only (DESIGN.md, "Data": no service reads another's schema).
--
-- Where it runs: compose.yaml mounts it into /docker-entrypoint-initdb.d, so the mysql image runs it
-- as root once, on an empty data directory. It is plain MySQL 8.4 / MariaDB 10.11 SQL and safe to
-- run again (IF NOT EXISTS everywhere; GRANT is idempotent).
--
-- Passwords: the ones below are for the local compose stack only. In AWS the same statements run
-- with passwords generated into Secrets Manager (the secret holds the whole ORDO_DATABASE_URL that
-- the ECS task definitions inject); never reuse these there.
--
-- Privileges: the services run their sqlx migrations at start (and `ordo-<svc> migrate`), so the
-- service user needs DDL on its schema as well as DML. Nothing is granted ON *.*: no FILE, PROCESS,
-- SUPER, GRANT OPTION, nor access to mysql.* or another service's schema. sqlx's migration lock is
-- GET_LOCK(), which needs no privilege. The connecting host is '%' because containers and tasks
-- have no fixed address; the network (compose network, VPC security group) is the boundary.
--
-- Character set: utf8mb4 is set explicitly (emails and names are Unicode); the collation is left to
-- the server's utf8mb4 default, the same one a service gets when it creates its schema itself.
--
-- A new service: copy one block and change the three names.

-- What every service user gets on its own schema: DML for the application, DDL for migrations.
--   CREATE on <schema>.* also lets the service run its own CREATE DATABASE IF NOT EXISTS <schema>.
--   LOCK TABLES and CREATE TEMPORARY TABLES are not granted: sqlx does not need them.

-- identity ---------------------------------------------------------------------------------------
CREATE DATABASE IF NOT EXISTS ordo_identity CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'ordo_identity'@'%' IDENTIFIED BY 'ordo_identity_dev';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES
  ON ordo_identity.* TO 'ordo_identity'@'%';

-- project ----------------------------------------------------------------------------------------
CREATE DATABASE IF NOT EXISTS ordo_project CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'ordo_project'@'%' IDENTIFIED BY 'ordo_project_dev';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES
  ON ordo_project.* TO 'ordo_project'@'%';

-- task -------------------------------------------------------------------------------------------
CREATE DATABASE IF NOT EXISTS ordo_task CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'ordo_task'@'%' IDENTIFIED BY 'ordo_task_dev';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES
  ON ordo_task.* TO 'ordo_task'@'%';

-- notification -----------------------------------------------------------------------------------
CREATE DATABASE IF NOT EXISTS ordo_notification CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'ordo_notification'@'%' IDENTIFIED BY 'ordo_notification_dev';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES
  ON ordo_notification.* TO 'ordo_notification'@'%';

-- audit ------------------------------------------------------------------------------------------
-- The audit log is append-only and hash-chained. Here the audit user gets the same privileges as
-- the others, because the service runs its own migrations at start and needs DDL for that.
-- In production that is split:
--   * a migration user (e.g. 'ordo_audit_migrate', used only by the one-off `ordo-audit migrate`
--     task before a deploy) holds the DDL privileges above;
--   * the runtime user 'ordo_audit' gets DML on the bookkeeping tables (outbox, processed_events,
--     ...) but on the log table itself only
--         GRANT SELECT, INSERT ON ordo_audit.audit_record TO 'ordo_audit'@'%';
--     so not even a compromised audit service can UPDATE or DELETE a record. (Table-level grants
--     need the table to exist, which is why they are applied after the first migration.)
CREATE DATABASE IF NOT EXISTS ordo_audit CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'ordo_audit'@'%' IDENTIFIED BY 'ordo_audit_dev';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES
  ON ordo_audit.* TO 'ordo_audit'@'%';
