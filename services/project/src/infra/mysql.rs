//! The MySQL store: projects and memberships in the `ordo_project` schema, and the outbox rows
//! written in the same transactions.

use async_trait::async_trait;
use ordo_events::{OutboxSignal, OutboxTx};
use ordo_platform::db::utc_datetime as utc;
use ordo_service::db_error;
use sqlx::mysql::MySqlPool;
use sqlx::{MySql, MySqlConnection, QueryBuilder};
use time::{OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use crate::app::ports::{AccessRecord, ProjectQuery, ProjectStore, ProjectTx};
use crate::app::{AppError, ClientInfo, Result};
use crate::domain::{Description, Membership, Project, ProjectEvent, ProjectKey, ProjectName, ProjectRole};

/// A `project` row; `list_projects` reads it through a `QueryBuilder`, hence `FromRow`.
#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: Uuid,
    project_key: String,
    name: String,
    description: Option<String>,
    archived: bool,
    created_by: Uuid,
    created_at: PrimitiveDateTime,
    updated_at: PrimitiveDateTime,
    version: i64,
}

fn corrupt(what: &str, id: Uuid) -> AppError {
    AppError::Internal(anyhow::anyhow!("stored project {id} has an invalid {what}"))
}

impl TryFrom<ProjectRow> for Project {
    type Error = AppError;

    fn try_from(row: ProjectRow) -> Result<Self> {
        let id = row.id;
        Ok(Project {
            id,
            key: ProjectKey::parse(&row.project_key).map_err(|_| corrupt("key", id))?,
            name: ProjectName::parse(&row.name).map_err(|_| corrupt("name", id))?,
            description: match row.description {
                Some(text) => Description::parse(&text).map_err(|_| corrupt("description", id))?,
                None => None,
            },
            archived: row.archived,
            created_by: row.created_by,
            created_at: row.created_at.assume_utc(),
            updated_at: row.updated_at.assume_utc(),
            version: row.version,
        })
    }
}

/// A `project` row with the asking user's role, if a member.
struct ProjectRoleRow {
    id: Uuid,
    project_key: String,
    name: String,
    description: Option<String>,
    archived: bool,
    created_by: Uuid,
    created_at: PrimitiveDateTime,
    updated_at: PrimitiveDateTime,
    version: i64,
    role: Option<String>,
}

impl ProjectRoleRow {
    fn into_parts(self) -> (ProjectRow, Option<String>) {
        let project = ProjectRow {
            id: self.id,
            project_key: self.project_key,
            name: self.name,
            description: self.description,
            archived: self.archived,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        };
        (project, self.role)
    }
}

struct MembershipRow {
    project_id: Uuid,
    user_id: Uuid,
    role: String,
    added_at: PrimitiveDateTime,
    version: i64,
}

impl TryFrom<MembershipRow> for Membership {
    type Error = AppError;

    fn try_from(row: MembershipRow) -> Result<Self> {
        Ok(Membership {
            project_id: row.project_id,
            user_id: row.user_id,
            role: role(&row.role)?,
            added_at: row.added_at.assume_utc(),
            version: row.version,
        })
    }
}

/// A membership with whether its user's account is disabled; `list_members` reads it through a
/// `QueryBuilder`, hence `FromRow`.
#[derive(sqlx::FromRow)]
struct MemberRow {
    project_id: Uuid,
    user_id: Uuid,
    role: String,
    added_at: PrimitiveDateTime,
    version: i64,
    disabled: bool,
}

impl TryFrom<MemberRow> for (Membership, bool) {
    type Error = AppError;

    fn try_from(row: MemberRow) -> Result<Self> {
        let membership = MembershipRow {
            project_id: row.project_id,
            user_id: row.user_id,
            role: row.role,
            added_at: row.added_at,
            version: row.version,
        };
        Ok((Membership::try_from(membership)?, row.disabled))
    }
}

struct AccessRow {
    project_key: String,
    archived: bool,
    role: Option<String>,
    disabled: bool,
}

fn role(name: &str) -> Result<ProjectRole> {
    ProjectRole::parse(name).ok_or_else(|| AppError::Internal(anyhow::anyhow!("stored role {name:?} is unknown")))
}

/// The project service's MySQL store.
#[derive(Debug, Clone)]
pub struct MySqlProjectStore {
    pool: MySqlPool,
    signal: OutboxSignal,
}

impl MySqlProjectStore {
    /// A store on `pool` that wakes the relay through `signal` after each commit.
    pub fn new(pool: MySqlPool, signal: OutboxSignal) -> Self {
        Self { pool, signal }
    }
}

#[async_trait]
impl ProjectStore for MySqlProjectStore {
    async fn begin(&self) -> Result<Box<dyn ProjectTx>> {
        let tx = OutboxTx::begin(&self.pool, &self.signal).await.map_err(db_error)?;
        Ok(Box::new(MySqlProjectTx { tx }))
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn project_with_role(
        &self,
        project_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<(Project, Option<ProjectRole>)>> {
        let row = sqlx::query_as!(
            ProjectRoleRow,
            "SELECT p.id, p.project_key, p.name, p.description, p.archived, p.created_by, p.created_at, \
             p.updated_at, p.version, m.role AS `role?` FROM project p \
             LEFT JOIN membership m ON m.project_id = p.id AND m.user_id = ? WHERE p.id = ?",
            user_id,
            project_id,
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let (project, role_name) = row.into_parts();
        let role = role_name.as_deref().map(role).transpose()?;
        Ok(Some((Project::try_from(project)?, role)))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_projects(&self, query: &ProjectQuery) -> Result<Vec<Project>> {
        // Dynamic: the membership join and the keyset filter are optional; every value is bound.
        let mut sql = QueryBuilder::<MySql>::new(
            "SELECT p.id, p.project_key, p.name, p.description, p.archived, p.created_by, p.created_at, \
             p.updated_at, p.version FROM project p ",
        );
        if let Some(member) = query.member {
            sql.push("JOIN membership m ON m.project_id = p.id AND m.user_id = ").push_bind(member);
        }
        sql.push(" WHERE p.archived = ").push_bind(query.archived);
        if let Some((name, id)) = &query.after {
            // Spelled out rather than as a row comparison, so MariaDB uses the (archived, name, id) index.
            sql.push(" AND (p.name > ")
                .push_bind(name.clone())
                .push(" OR (p.name = ")
                .push_bind(name.clone())
                .push(" AND p.id > ")
                .push_bind(*id)
                .push("))");
        }
        sql.push(" ORDER BY p.name, p.id LIMIT ").push_bind(query.limit);
        let rows: Vec<ProjectRow> = sql.build_query_as().fetch_all(&self.pool).await.map_err(db_error)?;
        rows.into_iter().map(Project::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_members(
        &self,
        project_id: Uuid,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<(Membership, bool)>> {
        // Dynamic: the keyset filter is optional; every value is bound.
        let mut sql = QueryBuilder::<MySql>::new(
            "SELECT m.project_id, m.user_id, m.role, m.added_at, m.version, COALESCE(s.disabled, FALSE) AS disabled \
             FROM membership m LEFT JOIN user_status s ON s.user_id = m.user_id WHERE m.project_id = ",
        );
        sql.push_bind(project_id);
        if let Some((added_at, user_id)) = after {
            sql.push(" AND (m.added_at > ")
                .push_bind(utc(added_at))
                .push(" OR (m.added_at = ")
                .push_bind(utc(added_at))
                .push(" AND m.user_id > ")
                .push_bind(user_id)
                .push("))");
        }
        sql.push(" ORDER BY m.added_at, m.user_id LIMIT ").push_bind(limit);
        let rows: Vec<MemberRow> = sql.build_query_as().fetch_all(&self.pool).await.map_err(db_error)?;
        rows.into_iter().map(<(Membership, bool)>::try_from).collect()
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn member(&self, project_id: Uuid, user_id: Uuid) -> Result<Option<(Membership, bool)>> {
        let row = sqlx::query_as!(
            MemberRow,
            "SELECT m.project_id, m.user_id, m.role, m.added_at, m.version, \
             COALESCE(s.disabled, FALSE) AS `disabled!: bool` \
             FROM membership m LEFT JOIN user_status s ON s.user_id = m.user_id \
             WHERE m.project_id = ? AND m.user_id = ?",
            project_id,
            user_id,
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(<(Membership, bool)>::try_from).transpose()
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn access(&self, project_id: Uuid, user_id: Uuid) -> Result<AccessRecord> {
        let row = sqlx::query_as!(
            AccessRow,
            "SELECT p.project_key, p.archived, m.role AS `role?`, COALESCE(s.disabled, FALSE) AS `disabled!: bool` \
             FROM project p \
             LEFT JOIN membership m ON m.project_id = p.id AND m.user_id = ? \
             LEFT JOIN user_status s ON s.user_id = ? WHERE p.id = ?",
            user_id,
            user_id,
            project_id,
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some(row) = row else { return Ok(AccessRecord::NoProject) };
        Ok(AccessRecord::Project {
            key: row.project_key,
            archived: row.archived,
            role: row.role.as_deref().map(role).transpose()?,
            user_disabled: row.disabled,
        })
    }
}

/// One MySQL transaction of the project service.
struct MySqlProjectTx {
    tx: OutboxTx,
}

#[async_trait]
impl ProjectTx for MySqlProjectTx {
    async fn insert_project(&mut self, project: &Project) -> Result<()> {
        let result = sqlx::query!(
            "INSERT INTO project (id, project_key, name, description, archived, created_by, created_at, updated_at, version) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            project.id,
            project.key.as_str(),
            project.name.as_str(),
            project.description.as_ref().map(Description::as_str),
            project.archived,
            project.created_by,
            utc(project.created_at),
            utc(project.updated_at),
            project.version,
        )
        .execute(&mut *self.tx)
        .await;
        ordo_service::unique_or(result.map(drop), crate::app::key_taken)
    }

    async fn project_for_update(&mut self, id: Uuid) -> Result<Option<Project>> {
        let row = sqlx::query_as!(
            ProjectRow,
            "SELECT p.id, p.project_key, p.name, p.description, p.archived, p.created_by, p.created_at, \
             p.updated_at, p.version FROM project p WHERE p.id = ? FOR UPDATE",
            id,
        )
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db_error)?;
        row.map(Project::try_from).transpose()
    }

    async fn update_project(&mut self, project: &Project, previous_version: i64) -> Result<()> {
        let result = sqlx::query!(
            "UPDATE project SET name = ?, description = ?, archived = ?, updated_at = ?, version = ? \
             WHERE id = ? AND version = ?",
            project.name.as_str(),
            project.description.as_ref().map(Description::as_str),
            project.archived,
            utc(project.updated_at),
            project.version,
            project.id,
            previous_version,
        )
        .execute(&mut *self.tx)
        .await
        .map_err(db_error)?;
        if result.rows_affected() == 1 { Ok(()) } else { Err(AppError::changed()) }
    }

    async fn delete_project(&mut self, id: Uuid) -> Result<()> {
        // Memberships go by the foreign key's cascade.
        sqlx::query!("DELETE FROM project WHERE id = ?", id).execute(&mut *self.tx).await.map_err(db_error)?;
        Ok(())
    }

    async fn membership(&mut self, project_id: Uuid, user_id: Uuid) -> Result<Option<Membership>> {
        let row = sqlx::query_as!(
            MembershipRow,
            "SELECT project_id, user_id, role, added_at, version FROM membership WHERE project_id = ? AND user_id = ?",
            project_id,
            user_id,
        )
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db_error)?;
        row.map(Membership::try_from).transpose()
    }

    async fn insert_membership(&mut self, membership: &Membership) -> Result<()> {
        let result = sqlx::query!(
            "INSERT INTO membership (project_id, user_id, role, added_at, version) VALUES (?, ?, ?, ?, ?)",
            membership.project_id,
            membership.user_id,
            membership.role.as_str(),
            utc(membership.added_at),
            membership.version,
        )
        .execute(&mut *self.tx)
        .await;
        ordo_service::unique_or(result.map(drop), crate::app::already_member)
    }

    async fn update_membership(&mut self, membership: &Membership) -> Result<()> {
        sqlx::query!(
            "UPDATE membership SET role = ?, version = ? WHERE project_id = ? AND user_id = ?",
            membership.role.as_str(),
            membership.version,
            membership.project_id,
            membership.user_id,
        )
        .execute(&mut *self.tx)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn delete_membership(&mut self, project_id: Uuid, user_id: Uuid) -> Result<()> {
        sqlx::query!("DELETE FROM membership WHERE project_id = ? AND user_id = ?", project_id, user_id)
            .execute(&mut *self.tx)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn owner_count(&mut self, project_id: Uuid) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar!("SELECT COUNT(*) FROM membership WHERE project_id = ? AND role = 'owner'", project_id)
                .fetch_one(&mut *self.tx)
                .await
                .map_err(db_error)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn member_ids(&mut self, project_id: Uuid) -> Result<Vec<Uuid>> {
        sqlx::query_scalar!(
            "SELECT user_id FROM membership WHERE project_id = ? ORDER BY added_at, user_id",
            project_id
        )
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db_error)
    }

    async fn user_disabled(&mut self, user_id: Uuid) -> Result<bool> {
        let disabled: Option<bool> = sqlx::query_scalar!("SELECT disabled FROM user_status WHERE user_id = ?", user_id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_error)?;
        Ok(disabled.unwrap_or(false))
    }

    async fn projects_of(&mut self, user_id: Uuid) -> Result<Vec<Uuid>> {
        projects_of(&mut self.tx, user_id).await.map_err(db_error)
    }

    async fn set_user_status(&mut self, user_id: Uuid, disabled: bool, as_of: OffsetDateTime) -> Result<bool> {
        set_user_status(&mut self.tx, user_id, disabled, as_of).await.map_err(db_error)
    }

    async fn record(&mut self, event: &ProjectEvent, actor: Option<Uuid>, client: &ClientInfo) -> Result<()> {
        let envelope = super::envelope::envelope(event, actor, client);
        self.tx.enqueue(&envelope).await.map_err(AppError::internal)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await.map_err(db_error)
    }
}

/// Every project `user_id` is a member of.
pub(crate) async fn projects_of(conn: &mut MySqlConnection, user_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("SELECT project_id FROM membership WHERE user_id = ?", user_id).fetch_all(conn).await
}

/// Stores an account's status as of `as_of` unless a newer one is stored; `true` if it was stored.
pub(crate) async fn set_user_status(
    conn: &mut MySqlConnection,
    user_id: Uuid,
    disabled: bool,
    as_of: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    let as_of = utc(as_of);
    // On a duplicate key the row changes only if this news is not older than what is stored (the
    // conditions read the old `as_of`, so `disabled` is assigned first).
    let result = sqlx::query!(
        "INSERT INTO user_status (user_id, disabled, as_of) VALUES (?, ?, ?) \
         ON DUPLICATE KEY UPDATE disabled = IF(VALUES(as_of) >= as_of, VALUES(disabled), disabled), \
         as_of = GREATEST(as_of, VALUES(as_of))",
        user_id,
        disabled,
        as_of,
    )
    .execute(conn)
    .await?;
    // 1: inserted; 2: updated; 0: the stored row is newer (or identical).
    Ok(result.rows_affected() > 0)
}
