-- Ordo's database users in AWS, with the passwords CloudFormation generated into Secrets Manager
-- (deploy/cloudformation/ordo.yaml, secrets `ordo/<env>/db/<user>`).
--
-- Run as the RDS administrator, in one session, followed by init.sql:
--
--   { <six SET statements>; cat deploy/mysql/users.sql deploy/mysql/init.sql; } | mysql ... -u ordo_admin
--
-- (deploy/cloudformation/README.md, "Database users", has the whole command.) This file creates each
-- user and sets its password to the one in its secret. init.sql then creates the schemas and grants
-- each user its own schema only; its CREATE USER IF NOT EXISTS finds the users made here and leaves
-- them and their passwords alone, so the grants are written once, in init.sql, for compose and AWS
-- alike. After `ordo-audit migrate`, audit-grants.sql gives 'ordo_audit' its table rights, as locally.
-- Safe to run again, and the way to apply a rotated password: ALTER USER sets it every time.
--
-- The passwords come in as session variables, since MySQL takes a password only as a literal:
--   @ordo_identity_password, @ordo_project_password, @ordo_task_password,
--   @ordo_notification_password, @ordo_audit_password, @ordo_audit_migrate_password
-- One left unset is a syntax error (QUOTE(NULL) is the bare word NULL): the mysql client stops there,
-- so no user gets an empty password and init.sql does not run.
--
-- Authentication is MySQL 8.4's default, caching_sha2_password: its full exchange needs TLS, which the
-- parameter group requires of every connection anyway. The host is '%' as in init.sql: tasks have no
-- fixed address, and the security groups decide who reaches the database.

-- identity ---------------------------------------------------------------------------------------
SET @ordo_sql = CONCAT('CREATE USER IF NOT EXISTS ''ordo_identity''@''%'' IDENTIFIED BY ', QUOTE(@ordo_identity_password));
PREPARE ordo_stmt FROM @ordo_sql; EXECUTE ordo_stmt; DEALLOCATE PREPARE ordo_stmt;
SET @ordo_sql = CONCAT('ALTER USER ''ordo_identity''@''%'' IDENTIFIED BY ', QUOTE(@ordo_identity_password));
PREPARE ordo_stmt FROM @ordo_sql; EXECUTE ordo_stmt; DEALLOCATE PREPARE ordo_stmt;

-- project ----------------------------------------------------------------------------------------
SET @ordo_sql = CONCAT('CREATE USER IF NOT EXISTS ''ordo_project''@''%'' IDENTIFIED BY ', QUOTE(@ordo_project_password));
PREPARE ordo_stmt FROM @ordo_sql; EXECUTE ordo_stmt; DEALLOCATE PREPARE ordo_stmt;
SET @ordo_sql = CONCAT('ALTER USER ''ordo_project''@''%'' IDENTIFIED BY ', QUOTE(@ordo_project_password));
PREPARE ordo_stmt FROM @ordo_sql; EXECUTE ordo_stmt; DEALLOCATE PREPARE ordo_stmt;

-- task -------------------------------------------------------------------------------------------
SET @ordo_sql = CONCAT('CREATE USER IF NOT EXISTS ''ordo_task''@''%'' IDENTIFIED BY ', QUOTE(@ordo_task_password));
PREPARE ordo_stmt FROM @ordo_sql; EXECUTE ordo_stmt; DEALLOCATE PREPARE ordo_stmt;
SET @ordo_sql = CONCAT('ALTER USER ''ordo_task''@''%'' IDENTIFIED BY ', QUOTE(@ordo_task_password));
PREPARE ordo_stmt FROM @ordo_sql; EXECUTE ordo_stmt; DEALLOCATE PREPARE ordo_stmt;

-- notification -----------------------------------------------------------------------------------
SET @ordo_sql = CONCAT('CREATE USER IF NOT EXISTS ''ordo_notification''@''%'' IDENTIFIED BY ', QUOTE(@ordo_notification_password));
PREPARE ordo_stmt FROM @ordo_sql; EXECUTE ordo_stmt; DEALLOCATE PREPARE ordo_stmt;
SET @ordo_sql = CONCAT('ALTER USER ''ordo_notification''@''%'' IDENTIFIED BY ', QUOTE(@ordo_notification_password));
PREPARE ordo_stmt FROM @ordo_sql; EXECUTE ordo_stmt; DEALLOCATE PREPARE ordo_stmt;

-- audit: the service's append-only user and the migration user (init.sql, audit-grants.sql) ------
SET @ordo_sql = CONCAT('CREATE USER IF NOT EXISTS ''ordo_audit''@''%'' IDENTIFIED BY ', QUOTE(@ordo_audit_password));
PREPARE ordo_stmt FROM @ordo_sql; EXECUTE ordo_stmt; DEALLOCATE PREPARE ordo_stmt;
SET @ordo_sql = CONCAT('ALTER USER ''ordo_audit''@''%'' IDENTIFIED BY ', QUOTE(@ordo_audit_password));
PREPARE ordo_stmt FROM @ordo_sql; EXECUTE ordo_stmt; DEALLOCATE PREPARE ordo_stmt;
SET @ordo_sql = CONCAT('CREATE USER IF NOT EXISTS ''ordo_audit_migrate''@''%'' IDENTIFIED BY ', QUOTE(@ordo_audit_migrate_password));
PREPARE ordo_stmt FROM @ordo_sql; EXECUTE ordo_stmt; DEALLOCATE PREPARE ordo_stmt;
SET @ordo_sql = CONCAT('ALTER USER ''ordo_audit_migrate''@''%'' IDENTIFIED BY ', QUOTE(@ordo_audit_migrate_password));
PREPARE ordo_stmt FROM @ordo_sql; EXECUTE ordo_stmt; DEALLOCATE PREPARE ordo_stmt;

-- The passwords do not outlive their use in this session.
SET @ordo_sql = NULL, @ordo_identity_password = NULL, @ordo_project_password = NULL, @ordo_task_password = NULL,
  @ordo_notification_password = NULL, @ordo_audit_password = NULL, @ordo_audit_migrate_password = NULL;
