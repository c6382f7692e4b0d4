//! The status history: one row per change of a task's status, written with the change.

use super::*;

/// A task's history rows as (from, to, actor), oldest first.
async fn history(db: &MySqlPool, task_id: &str) -> Vec<(Option<String>, String, Option<Uuid>)> {
    let rows: Vec<(Option<String>, String, Option<Uuid>)> = sqlx::query_as(
        "SELECT from_status, to_status, actor_id FROM task_status_change \
         WHERE task_id = UNHEX(REPLACE(?, '-', '')) ORDER BY id",
    )
    .bind(task_id)
    .fetch_all(db)
    .await
    .unwrap();
    rows
}

fn status(patch_status: pb::TaskStatus) -> pb::TaskPatch {
    pb::TaskPatch { status: patch_status.into(), ..Default::default() }
}

fn change(from: Option<&str>, to: &str, actor: &User) -> (Option<String>, String, Option<Uuid>) {
    (from.map(str::to_owned), to.to_owned(), Some(actor.id))
}

#[tokio::test]
async fn every_status_a_task_takes_is_recorded_once_with_who_changed_it() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let member = stack.user("member@example.com").await;
    let project = stack.project(&owner, "FLOW").await;
    stack.add(&owner, &project, &member, ppb::ProjectRole::Member).await;

    let mut request = new_task(&project, "Write the flow report");
    request.status = pb::TaskStatus::Backlog.into();
    let task = stack.create(&owner, request).await;
    assert_eq!(history(&stack.db, &task.id).await, [change(None, "backlog", &owner)]);
    let created_at: time::PrimitiveDateTime =
        sqlx::query_scalar("SELECT changed_at FROM task_status_change WHERE task_id = UNHEX(REPLACE(?, '-', ''))")
            .bind(&task.id)
            .fetch_one(&stack.db)
            .await
            .unwrap();
    assert_eq!(created_at.assume_utc().unix_timestamp(), task.created_at.unwrap().seconds);

    // An edit that leaves the status as it is records nothing; a status set to the one it has
    // neither.
    let patch = pb::TaskPatch { title: "Write the flow report, with charts".into(), ..Default::default() };
    let task = stack.update(&member, &task.id, patch, &["title"], None).await.unwrap();
    let task = stack.update(&member, &task.id, status(pb::TaskStatus::Backlog), &["status"], None).await.unwrap();
    assert_eq!(history(&stack.db, &task.id).await.len(), 1);

    let started = stack.update(&member, &task.id, status(pb::TaskStatus::InProgress), &["status"], None).await.unwrap();
    // A write refused for a stale version writes no history either.
    let stale = stack
        .update(&owner, &task.id, status(pb::TaskStatus::Cancelled), &["status"], Some(task.version))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    let done = stack.update(&owner, &task.id, status(pb::TaskStatus::Done), &["status"], None).await.unwrap();
    assert_eq!(
        history(&stack.db, &task.id).await,
        [
            change(None, "backlog", &owner),
            change(Some("backlog"), "in_progress", &member),
            change(Some("in_progress"), "done", &owner)
        ]
    );
    let times: Vec<time::PrimitiveDateTime> = sqlx::query_scalar(
        "SELECT changed_at FROM task_status_change WHERE task_id = UNHEX(REPLACE(?, '-', '')) ORDER BY id",
    )
    .bind(&task.id)
    .fetch_all(&stack.db)
    .await
    .unwrap();
    let seconds: Vec<i64> = times.iter().map(|t| t.assume_utc().unix_timestamp()).collect();
    assert_eq!(
        seconds[1..],
        [started.updated_at.unwrap().seconds, done.updated_at.unwrap().seconds],
        "each change is dated by the edit that made it"
    );

    // A bulk update records a change for each task whose status it moved.
    let other = stack.create(&owner, new_task(&project, "Chart the flow")).await;
    let request = pb::BulkUpdateTasksRequest {
        ids: vec![task.id.clone(), other.id.clone()],
        patch: Some(status(pb::TaskStatus::Done)),
        update_mask: mask(&["status"]),
        client: client_info(),
    };
    stack.tasks.bulk_update_tasks(as_user(&member, request)).await.unwrap();
    assert_eq!(history(&stack.db, &task.id).await.len(), 3, "the done task stayed done");
    assert_eq!(
        history(&stack.db, &other.id).await,
        [change(None, "todo", &owner), change(Some("todo"), "done", &member)]
    );

    // The history goes with its task.
    let request = pb::DeleteTaskRequest { id: task.id.clone(), ..Default::default() };
    stack.tasks.delete_task(as_user(&owner, request)).await.unwrap();
    assert!(history(&stack.db, &task.id).await.is_empty());
    assert_eq!(history(&stack.db, &other.id).await.len(), 2);

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn creates_written_together_record_one_first_status_each() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let project = stack.project(&owner, "LANE").await;

    // Concurrent creates of one project share transactions (the project's lane).
    let creates = (0..24).map(|i| {
        let mut client = stack.tasks.clone();
        let mut request = new_task(&project, &format!("Create {i}"));
        request.status = if i % 2 == 0 { pb::TaskStatus::Todo } else { pb::TaskStatus::InProgress }.into();
        let owner = owner.clone();
        async move { client.create_task(as_user(&owner, request)).await.unwrap().into_inner().task.unwrap() }
    });
    let tasks = futures::future::join_all(creates).await;
    for task in &tasks {
        let to = if task.status == pb::TaskStatus::Todo as i32 { "todo" } else { "in_progress" };
        assert_eq!(history(&stack.db, &task.id).await, [change(None, to, &owner)], "{}", task.title);
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM task_status_change").fetch_one(&stack.db).await.unwrap();
    assert_eq!(rows, 24);

    stack.stop().await;
    env.cleanup().await.unwrap();
}

/// The migration that starts the history gives every task that exists already one row: its status
/// then, dated by its completion when it is done and by its creation otherwise, by no one.
#[tokio::test]
async fn tasks_older_than_the_history_get_their_status_then_as_their_first_row() {
    const HISTORY_VERSION: i64 = 20261207000001;
    let env = TestEnv::new();
    let (_, db) = env.create_pool("task").await.unwrap();
    let migrator = ordo_events::merge_migrations(&ordo_task::MIGRATOR).unwrap();
    let before = sqlx::migrate::Migrator::with_migrations(
        migrator.iter().filter(|m| m.version < HISTORY_VERSION).cloned().collect(),
    );
    before.run(&db).await.unwrap();

    let project = Uuid::now_v7();
    let insert = |number: i64, status: &'static str, created: &'static str, completed: Option<&'static str>| {
        let db = db.clone();
        async move {
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO task (id, project_id, number, project_key, title, status, priority, reporter_id, \
                 position, created_at, updated_at, completed_at) VALUES (?, ?, ?, 'OLD', 'Old task', ?, 0, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(project)
            .bind(number)
            .bind(status)
            .bind(Uuid::now_v7())
            .bind(format!("p{number}"))
            .bind(created)
            .bind(created)
            .bind(completed)
            .execute(&db)
            .await
            .unwrap();
            id
        }
    };
    let todo = insert(1, "todo", "2026-11-02 09:00:00", None).await;
    let done = insert(2, "done", "2026-11-03 09:00:00", Some("2026-11-20 17:30:00")).await;

    migrator.run(&db).await.unwrap();
    type Row = (Uuid, Option<String>, String, String, Option<Uuid>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT task_id, from_status, to_status, DATE_FORMAT(changed_at, '%Y-%m-%d %H:%i'), actor_id \
         FROM task_status_change ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            (todo, None, "todo".to_owned(), "2026-11-02 09:00".to_owned(), None),
            (done, None, "done".to_owned(), "2026-11-20 17:30".to_owned(), None),
        ]
    );

    db.close().await;
    env.cleanup().await.unwrap();
}
