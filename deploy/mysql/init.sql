-- Ordo's schemas and database users: one schema per service, one user per service, each user with
-- privileges on its own schema only (DESIGN.md, "Data": no service reads another's schema).
--
-- Where it runs: compose.yaml mounts it into /docker-entrypoint-initdb.d, so the mysql image runs it
-- as root once, on an empty data directory. It is plain MySQL 8.4 / MariaDB 10.11 SQL and safe to
-- run again (IF NOT EXISTS everywhere; GRANT is idempotent).
--
-- Passwords: the ones below are for the local compose stack only; never reuse them elsewhere. In AWS,
-- deploy/mysql/users.sql runs first in the same session and creates the users with the passwords
-- CloudFormation generated into Secrets Manager, so CREATE USER IF NOT EXISTS here finds them and
-- leaves their passwords alone, and the grants below are the ones AWS gets too
-- (deploy/cloudformation/README.md, "Database users").
--
-- Privileges: the services run their sqlx migrations at start (and `ordo-<svc> migrate`), so the
-- service user needs DDL on its schema as well as DML; audit is the exception (see its block).
-- Nothing is granted ON *.*: no FILE, PROCESS, SUPER, GRANT OPTION, nor access to mysql.* or
-- another service's schema. sqlx's migration lock is GET_LOCK(), which needs no privilege. The
-- connecting host is '%' because containers and tasks have no fixed address; the network (compose
-- network, VPC security group) is the boundary.
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
-- The audit log is append-only and hash-chained, and the database enforces it with two users:
--   * 'ordo_audit_migrate' holds everything on the schema. Only the one-off `ordo-audit migrate`
--     uses it (compose's `audit-migrate`; a one-off ECS task before a deploy), never the service.
--   * 'ordo_audit', the running service, may append to audit_record and read it, but never UPDATE,
--     DELETE, ALTER or DROP it. Its table grants are in deploy/mysql/audit-grants.sql, because MySQL
--     and MariaDB refuse a table-level GRANT on a table that does not exist yet (ERROR 1146), and
--     these tables are created by the migrations. So the order is: this file, then
--     `ordo-audit migrate` as 'ordo_audit_migrate', then audit-grants.sql as an administrator
--     (again after any audit migration that adds a table), then the service.
--   Here 'ordo_audit' gets nothing on the schema itself: the deployed service runs with
--   ORDO_MIGRATE_AT_START=false, so it never issues DDL (not even sqlx's `CREATE TABLE IF NOT
--   EXISTS _sqlx_migrations`).
-- A data directory initialised by an older version of this file gave 'ordo_audit' DML and DDL on
-- the whole schema: REVOKE ALL PRIVILEGES ON ordo_audit.* FROM 'ordo_audit'@'%' there first.
CREATE DATABASE IF NOT EXISTS ordo_audit CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'ordo_audit_migrate'@'%' IDENTIFIED BY 'ordo_audit_migrate_dev';
GRANT ALL PRIVILEGES ON ordo_audit.* TO 'ordo_audit_migrate'@'%';
CREATE USER IF NOT EXISTS 'ordo_audit'@'%' IDENTIFIED BY 'ordo_audit_dev';
