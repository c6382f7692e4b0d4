//! The status history rows (`task_status_change`): appended in the transaction of the create or edit
//! that changed a status, never edited; they go with their task when it is deleted.

use ordo_platform::db::utc_datetime as utc;
use sqlx::{MySql, MySqlConnection, QueryBuilder};

use super::db;
use crate::app::Result;
use crate::domain::StatusChange;

/// Rows per statement: a batch of creates writes one change per task.
const INSERT_CHUNK: usize = 500;

/// Appends `changes`, in order, in multi-row statements.
pub(super) async fn append(conn: &mut MySqlConnection, changes: &[StatusChange]) -> Result<()> {
    for chunk in changes.chunks(INSERT_CHUNK) {
        let mut sql = QueryBuilder::<MySql>::new(
            "INSERT INTO task_status_change (task_id, project_id, from_status, to_status, changed_at, actor_id) ",
        );
        sql.push_values(chunk, |mut row, change| {
            row.push_bind(change.task_id)
                .push_bind(change.project_id)
                .push_bind(change.from.map(|status| status.as_str()))
                .push_bind(change.to.as_str())
                .push_bind(utc(change.at))
                .push_bind(change.actor_id);
        });
        sql.build().execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}
