//! Imports of tasks from a file in an export's format: a project exported as CSV and as JSON imports
//! into another with every field a file carries equal; a dry run; rows left out and why; the same
//! file sent twice; who may import; and an import taken over mid-run, which resumes after the last
//! chunk its first attempt committed and creates no task twice; Trello boards and Jira issues, their
//! statuses mapped by the request or by the usual names; a deleted project's jobs that have not ended
//! fail.

use std::time::Duration;

use ordo_proto::events::v1 as pb_events;

use super::*;

/// The request stream of an import of `file` into `project`: its header, the file in chunks of
/// 64 KiB, then `end` with the file's size.
pub(super) fn import_request(
    project: &str,
    file: &[u8],
    end: pb::ImportEnd,
) -> impl tokio_stream::Stream<Item = pb::CreateImportRequest> + Send + 'static {
    use pb::create_import_request::Part;
    let mut parts = vec![Part::Header(pb::ImportHeader { project_id: project.to_owned() })];
    parts.extend(file.chunks(64 * 1024).map(|chunk| Part::Chunk(chunk.to_vec())));
    parts.push(Part::End(pb::ImportEnd { size_bytes: file.len() as u64, ..end }));
    tokio_stream::iter(parts.into_iter().map(|part| pb::CreateImportRequest { part: Some(part) }))
}

impl Stack {
    async fn import(
        &self,
        by: &User,
        project: &str,
        format: pb::ExportFormat,
        file: &[u8],
        dry_run: bool,
    ) -> Result<pb::CreateImportResponse, tonic::Status> {
        let end = pb::ImportEnd { format: format.into(), dry_run, ..Default::default() };
        Ok(self.jobs().create_import(as_user(by, import_request(project, file, end))).await?.into_inner())
    }

    /// The file of a finished export of every task of `project` in board order.
    async fn exported(&self, by: &User, project: &str, format: pb::ExportFormat) -> Vec<u8> {
        let filter = pb::ListTasksRequest { sort: pb::TaskSort::PositionAsc.into(), ..Default::default() };
        let request = pb::CreateExportRequest {
            project_id: project.to_owned(),
            format: format.into(),
            filter: Some(filter),
            include: Vec::new(),
        };
        let job = self.jobs().create_export(as_user(by, request)).await.unwrap().into_inner().job.unwrap();
        let job = self.finished(by, &job.id).await;
        assert_eq!(job.state(), pb::JobState::Done, "{job:?}");
        let extension = if format == pb::ExportFormat::Csv { "csv" } else { "json" };
        let key = format!("exports/{}/{}/{}.{extension}", job.project_id, job.id, job.attempts);
        let object = self.s3.get_object().bucket(&self.bucket).key(key).send().await.unwrap();
        object.body.collect().await.unwrap().into_bytes().to_vec()
    }
}

/// What an import carries of a task, with its parent named by title.
#[derive(Debug, PartialEq)]
struct Carried {
    title: String,
    description: Option<String>,
    status: i32,
    priority: i32,
    assignee_ids: Vec<String>,
    labels: Vec<String>,
    due_at: Option<prost_types::Timestamp>,
    start_at: Option<prost_types::Timestamp>,
    estimate_minutes: Option<i32>,
    parent: Option<String>,
}

/// The tasks of `project` in board order, as an import carries them.
async fn carried(stack: &mut Stack, by: &User, project: &str) -> Vec<Carried> {
    let request = pb::ListTasksRequest {
        project_id: project.to_owned(),
        sort: pb::TaskSort::PositionAsc.into(),
        ..Default::default()
    };
    let tasks = stack.list_all(by, request, 100).await;
    let title_of = |id: &str| tasks.iter().find(|t| t.id == id).map(|t| t.title.clone());
    tasks
        .iter()
        .map(|t| Carried {
            title: t.title.clone(),
            description: t.description.clone(),
            status: t.status,
            priority: t.priority,
            assignee_ids: t.assignee_ids.clone(),
            labels: t.labels.clone(),
            due_at: t.due_at,
            start_at: t.start_at,
            estimate_minutes: t.estimate_minutes,
            parent: t.parent_id.as_deref().map(|p| title_of(p).expect("the parent is in the project")),
        })
        .collect()
}

#[tokio::test]
async fn a_project_exported_as_csv_or_json_imports_into_another_with_every_field_equal() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let owner = stack.user("owner@import.test").await;
    let member = stack.user("member@import.test").await;
    let source = stack.project(&owner, "SRC").await;
    stack.add(&owner, &source, &member, ppb::ProjectRole::Member).await;
    let mut parent: Option<String> = None;
    for n in 0..12 {
        let title = match n {
            0 => "=HYPERLINK(\"http://evil.test\",\"click\")".to_owned(),
            1 => "'quoted, \"and\" commas".to_owned(),
            _ => format!("Task {n}"),
        };
        let request = pb::CreateTaskRequest {
            description: (n % 3 != 0).then(|| format!("-Line one of {n}\nline two, \"quoted\"")),
            status: [pb::TaskStatus::Todo, pb::TaskStatus::InProgress, pb::TaskStatus::Done][n % 3].into(),
            priority: [pb::TaskPriority::None, pb::TaskPriority::Urgent, pb::TaskPriority::Low][n % 3].into(),
            assignee_ids: if n % 2 == 0 { vec![member.id.to_string()] } else { Vec::new() },
            labels: if n % 4 == 0 { vec!["@ops".into(), format!("n{n}")] } else { Vec::new() },
            due_at: (n % 2 == 1).then(|| prost_types::Timestamp { seconds: 1_800_000_000 + n as i64, nanos: 5_000 }),
            start_at: (n == 3).then_some(prost_types::Timestamp { seconds: 1_799_000_000, nanos: 0 }),
            estimate_minutes: (n % 5 == 0).then_some(30 * n as i32),
            // Tasks 4, 5 and 6 hang in one chain under task 3.
            parent_id: if (4..=6).contains(&n) { parent.clone() } else { None },
            ..new_task(&source, &title)
        };
        let task = stack.create(&owner, request).await;
        if (3..=5).contains(&n) {
            parent = Some(task.id.clone());
        }
    }
    let expected = carried(&mut stack, &owner, &source).await;
    assert_eq!(expected.len(), 12);

    for (format, key) in [(pb::ExportFormat::Csv, "CSVIN"), (pb::ExportFormat::Json, "JSONIN")] {
        let file = stack.exported(&owner, &source, format).await;
        let target = stack.project(&owner, key).await;
        stack.add(&owner, &target, &member, ppb::ProjectRole::Member).await;

        // A dry run says what would be imported, and imports nothing.
        let preview = stack.import(&owner, &target, format, &file, true).await.unwrap();
        assert!(preview.job.is_none());
        let report = preview.preview.unwrap();
        assert_eq!((report.rows, report.tasks, report.error_count, report.warning_count), (12, 12, 0, 0));
        assert!(carried(&mut stack, &owner, &target).await.is_empty());

        let queued = stack.import(&owner, &target, format, &file, false).await.unwrap();
        assert!(queued.created && queued.preview.is_none());
        let job = queued.job.unwrap();
        assert_eq!((job.kind.as_str(), job.format()), ("import", format));
        assert_eq!(job.rows_total, Some(12));
        let done = stack.finished(&owner, &job.id).await;
        assert_eq!(done.state(), pb::JobState::Done, "{done:?}");
        assert_eq!((done.rows_done, done.rows_total), (12, Some(12)));
        assert_eq!(done.import_report.as_ref().map(|r| r.tasks), Some(12));
        assert_eq!(carried(&mut stack, &owner, &target).await, expected, "{format:?}");
        // Its end is announced to its requester, in the transaction that recorded it.
        let ended: Vec<pb_events::JobEnded> = stack
            .outbox()
            .await
            .into_iter()
            .filter(|e| e.r#type == "job.ended" && e.entity_id == job.id)
            .filter_map(|e| match e.payload {
                Some(Payload::JobEnded(ended)) => Some(ended),
                _ => None,
            })
            .collect();
        assert_eq!(ended.len(), 1, "announced once");
        let told = stack.outbox().await.into_iter().filter(|e| e.r#type == "job.progressed" && e.entity_id == job.id);
        assert_eq!(told.count(), 1, "its progress told once per chunk: one chunk of 12 tasks");
        assert_eq!(
            (ended[0].kind.as_str(), ended[0].state.as_str(), ended[0].rows, ended[0].requester_id.as_str()),
            ("import", "done", 12, owner.id.to_string().as_str())
        );

        // The same file again answers the same job and imports nothing more.
        let again = stack.import(&owner, &target, format, &file, false).await.unwrap();
        assert!(!again.created);
        assert_eq!(again.job.unwrap().id, job.id);
        assert_eq!(carried(&mut stack, &owner, &target).await.len(), 12);
    }
    stack.stop().await;
}

#[tokio::test]
async fn rows_that_break_rules_are_left_out_and_who_may_import_is_decided_first() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let owner = stack.user("owner@rows.test").await;
    let viewer = stack.user("viewer@rows.test").await;
    let stranger = stack.user("stranger@rows.test").await;
    let project = stack.project(&owner, "ROWS").await;
    stack.add(&owner, &project, &viewer, ppb::ProjectRole::Viewer).await;
    let file = format!(
        "title,status,assignee_ids,parent_id,id,due_at\r\n\
         Good,todo,,,a,\r\n\
         ,todo,,,b,\r\n\
         Bad status,someday,,,c,\r\n\
         Foreign,todo,{},,d,\r\n\
         Orphan,done,,zz,e,2027-01-15T17:00:00Z\r\n\
         Child,todo,,a,f,not a date\r\n",
        stranger.id
    );

    let report = stack.import(&owner, &project, pb::ExportFormat::Csv, file.as_bytes(), true).await.unwrap();
    let report = report.preview.unwrap();
    assert_eq!((report.rows, report.tasks, report.error_count, report.warning_count), (6, 2, 4, 1));
    let errors: Vec<(u32, &str)> = report.errors.iter().map(|e| (e.row, e.field.as_str())).collect();
    assert_eq!(errors, [(2, "title"), (3, "status"), (4, "assignee_ids"), (6, "due_at")]);
    assert_eq!((report.warnings[0].row, report.warnings[0].field.as_str()), (5, "parent_id"));

    // A viewer may not import, a stranger learns nothing, whatever the file holds.
    let denied = stack.import(&viewer, &project, pb::ExportFormat::Csv, b"not csv at all", false).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let hidden = stack.import(&stranger, &project, pb::ExportFormat::Csv, file.as_bytes(), true).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
    // The refusal comes on the header, before the file: a stream that stops after it still gets it.
    use pb::create_import_request::Part;
    for (who, code) in [(&stranger, Code::NotFound), (&viewer, Code::PermissionDenied)] {
        let header =
            pb::CreateImportRequest { part: Some(Part::Header(pb::ImportHeader { project_id: project.clone() })) };
        let hanging = tokio_stream::StreamExt::chain(tokio_stream::iter([header]), tokio_stream::pending());
        let mut jobs = stack.jobs();
        let call = jobs.create_import(as_user(who, hanging));
        let refused = tokio::time::timeout(Duration::from_secs(10), call).await.expect("answered before the file");
        assert_eq!(refused.unwrap_err().code(), code);
    }
    // A stream out of order, cut short or miscounted is refused whole.
    let csv = pb::ExportFormat::Csv.into();
    let chunk = |bytes: &[u8]| pb::CreateImportRequest { part: Some(Part::Chunk(bytes.to_vec())) };
    let end = |size_bytes| pb::CreateImportRequest {
        part: Some(Part::End(pb::ImportEnd { format: csv, size_bytes, ..Default::default() })),
    };
    let header =
        || pb::CreateImportRequest { part: Some(Part::Header(pb::ImportHeader { project_id: project.clone() })) };
    for (parts, what) in [
        (vec![chunk(file.as_bytes()), end(file.len() as u64)], "no header first"),
        (vec![header(), chunk(file.as_bytes())], "no end"),
        (vec![header(), chunk(file.as_bytes()), end(file.len() as u64 + 1)], "an end that miscounts"),
        (vec![header(), header(), chunk(file.as_bytes()), end(file.len() as u64)], "two headers"),
    ] {
        let refused = stack.jobs().create_import(as_user(&owner, tokio_stream::iter(parts))).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
    }
    // A file that is not one of its format is the file's error.
    let unreadable = stack.import(&owner, &project, pb::ExportFormat::Json, file.as_bytes(), false).await.unwrap_err();
    assert_eq!(bad_fields(&unreadable), ["file"]);
    let unformatted = stack.import(&owner, &project, pb::ExportFormat::Unspecified, b"[]", false).await.unwrap_err();
    assert_eq!(bad_fields(&unformatted), ["format"]);

    let job = stack.import(&owner, &project, pb::ExportFormat::Csv, file.as_bytes(), false).await.unwrap();
    let done = stack.finished(&owner, &job.job.unwrap().id).await;
    assert_eq!((done.state(), done.rows_done), (pb::JobState::Done, 2));
    let report = done.import_report.unwrap();
    assert_eq!((report.error_count, report.errors.len()), (4, 4));
    let titles: Vec<String> = stack
        .list_all(&owner, pb::ListTasksRequest { project_id: project.clone(), ..Default::default() }, 50)
        .await
        .into_iter()
        .map(|t| t.title)
        .collect();
    assert_eq!(titles.len(), 2);
    assert!(titles.contains(&"Good".to_owned()) && titles.contains(&"Orphan".to_owned()));
    stack.stop().await;
}

/// Waits until job `id` has recorded progress, failing the test if it ends first (the test means
/// to stop it mid-run) or records none within a minute; the rows it has done.
pub(super) async fn first_progress(stack: &Stack, id: Uuid) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (state, rows_done): (String, u64) = sqlx::query_as("SELECT state, rows_done FROM job WHERE id = ?")
            .bind(id)
            .fetch_one(&stack.db)
            .await
            .unwrap();
        assert!(state == "running" || state == "queued", "job {id} ended before it could be stopped mid-run");
        if rows_done > 0 {
            return rows_done;
        }
        assert!(tokio::time::Instant::now() < deadline, "job {id} never recorded progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Rows of [`chained_rows`].
pub(super) const ROWS: usize = 3_000;

/// A CSV of [`ROWS`] tasks in which every tenth row is a subtask of the row before it, so parents
/// cross the edges of an import's chunks.
pub(super) fn chained_rows() -> String {
    let mut file = String::from("id,title,parent_id\r\n");
    for n in 1..=ROWS {
        let parent = if n % 10 == 0 { format!("r{}", n - 1) } else { String::new() };
        file.push_str(&format!("r{n},Row {n},{parent}\r\n"));
    }
    file
}

/// Checks that the import `done` of [`chained_rows`] into `project` created every row once: each
/// subtask under its parent, each row mapped to its task, the numbers without a gap.
pub(super) async fn assert_imported_once(stack: &Stack, done: &pb::Job, project: &str) {
    assert_eq!(done.state(), pb::JobState::Done, "{done:?}");
    assert_eq!((done.rows_done, done.rows_total), (ROWS as u64, Some(ROWS as u64)));
    let project = Uuid::parse_str(project).unwrap();
    let tasks: Vec<(String, Option<Uuid>)> = sqlx::query_as("SELECT title, parent_id FROM task WHERE project_id = ?")
        .bind(project)
        .fetch_all(&stack.db)
        .await
        .unwrap();
    assert_eq!(tasks.len(), ROWS, "every row once");
    let titles: HashSet<&str> = tasks.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(titles.len(), ROWS, "no row twice");
    assert_eq!(tasks.iter().filter(|(_, p)| p.is_some()).count(), ROWS / 10, "every subtask under its parent");
    let mapped: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM import_task WHERE job_id = ?")
        .bind(Uuid::parse_str(&done.id).unwrap())
        .fetch_one(&stack.db)
        .await
        .unwrap();
    assert_eq!(mapped, ROWS as i64);
    let numbers: Vec<i64> = sqlx::query_scalar("SELECT number FROM task WHERE project_id = ? ORDER BY number")
        .bind(project)
        .fetch_all(&stack.db)
        .await
        .unwrap();
    assert_eq!(numbers, (1..=ROWS as i64).collect::<Vec<_>>(), "numbers without a gap");
}

#[tokio::test]
async fn an_import_taken_over_mid_run_resumes_after_its_last_committed_chunk_and_creates_no_task_twice() {
    let env = TestEnv::new();
    let mut stack = spawn_with(&env, &["--job-poll-ms", "50", "--job-lease-secs", "30"]).await;
    let owner = stack.user("owner@resume.test").await;
    let project = stack.project(&owner, "RES").await;
    let job = stack.import(&owner, &project, pb::ExportFormat::Csv, chained_rows().as_bytes(), false).await.unwrap();
    let id = Uuid::parse_str(&job.job.unwrap().id).unwrap();

    // Once the first attempt has committed a chunk, another takes the job over, as an instance does
    // once the lease of one that died has run out: the first attempt's next chunk is refused and
    // rolled back, and the runner claims the job again where the committed progress says.
    assert!(first_progress(&stack, id).await < ROWS as u64);
    sqlx::query("UPDATE job SET attempt = attempt + 1, lease_until = NOW(6) - INTERVAL 1 SECOND WHERE id = ?")
        .bind(id)
        .execute(&stack.db)
        .await
        .unwrap();

    let done = stack.finished(&owner, &id.to_string()).await;
    assert_eq!(done.state(), pb::JobState::Done, "{done:?}");
    assert_eq!(done.attempts, 3, "the first attempt, the takeover, and the claim after it");
    assert_imported_once(&stack, &done, &project).await;
    stack.stop().await;
}

#[tokio::test]
async fn a_trello_board_and_jira_issues_import_with_their_statuses_mapped() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let owner = stack.user("owner@trackers.test").await;
    let project = stack.project(&owner, "TRK").await;
    let board = r#"{"name": "Launch", "lists": [
            {"id": "l1", "name": "Ideas", "pos": 1}, {"id": "l2", "name": "Doing", "pos": 2},
            {"id": "l3", "name": "Parked", "pos": 3}],
        "cards": [
            {"id": "a", "name": "Plan", "desc": "Steps", "idList": "l2", "pos": 1,
             "labels": [{"name": "launch", "color": "red"}], "due": "2027-03-01T10:00:00.000Z"},
            {"id": "b", "name": "Someday", "desc": "", "idList": "l1", "pos": 1, "labels": []},
            {"id": "c", "name": "Later", "desc": "", "idList": "l3", "pos": 1, "labels": []},
            {"id": "d", "name": "Gone", "desc": "", "idList": "l2", "pos": 2, "closed": true, "labels": []}]}"#;
    let end = pb::ImportEnd {
        format: pb::ExportFormat::Json.into(),
        status_map: [("ideas".to_owned(), "backlog".to_owned())].into(),
        ..Default::default()
    };
    let request = import_request(&project, board.as_bytes(), end.clone());
    let job = stack.jobs().create_import(as_user(&owner, request)).await.unwrap().into_inner().job.unwrap();
    let done = stack.finished(&owner, &job.id).await;
    assert_eq!((done.state(), done.rows_done), (pb::JobState::Done, 3), "{done:?}");
    // The same board with a map that reads it alike is the same import.
    let alike = pb::ImportEnd { status_map: [(" IDEAS".to_owned(), "backlog".to_owned())].into(), ..end };
    let again = import_request(&project, board.as_bytes(), alike);
    let again = stack.jobs().create_import(as_user(&owner, again)).await.unwrap().into_inner();
    assert_eq!((again.created, again.job.unwrap().id), (false, job.id.clone()));
    let jira = "Summary,Issue key,Issue id,Parent id,Status,Status Category,Priority,Labels,Labels,Due date,Original Estimate\r\n\
        Epic work,OPS-1,101,,Waiting for vendor,In Progress,Highest,ops,,15/Jan/27 5:00 PM,5400\r\n\
        Sub work,OPS-2,102,101,Won't Do,Done,Low,ops,infra,,\r\n";
    let job = stack.import(&owner, &project, pb::ExportFormat::Csv, jira.as_bytes(), false).await.unwrap();
    let done = stack.finished(&owner, &job.job.unwrap().id).await;
    assert_eq!((done.state(), done.rows_done), (pb::JobState::Done, 2), "{done:?}");

    let request = pb::ListTasksRequest {
        project_id: project.clone(),
        sort: pb::TaskSort::PositionAsc.into(),
        ..Default::default()
    };
    let tasks = stack.list_all(&owner, request, 50).await;
    let seen: Vec<(&str, pb::TaskStatus)> = tasks.iter().map(|t| (t.title.as_str(), t.status())).collect();
    assert_eq!(
        seen,
        [
            ("Someday", pb::TaskStatus::Backlog),
            ("Plan", pb::TaskStatus::InProgress),
            ("Later", pb::TaskStatus::Todo),
            ("Epic work", pb::TaskStatus::InProgress),
            ("Sub work", pb::TaskStatus::Cancelled),
        ]
    );
    let plan = &tasks[1];
    assert_eq!(
        (plan.description.as_deref(), plan.labels.as_slice()),
        (Some("Steps"), ["launch".to_owned()].as_slice())
    );
    assert_eq!(plan.due_at.map(|t| t.seconds), Some(1_803_895_200));
    let (epic, sub) = (&tasks[3], &tasks[4]);
    assert_eq!((epic.priority(), epic.estimate_minutes), (pb::TaskPriority::Urgent, Some(90)));
    assert_eq!(epic.due_at.map(|t| t.seconds), Some(1_800_032_400));
    assert_eq!((sub.parent_id.as_deref(), sub.labels.len()), (Some(epic.id.as_str()), 2));

    // The board with another map is imported again, as that map reads it.
    let end = pb::ImportEnd {
        format: pb::ExportFormat::Json.into(),
        dry_run: false,
        status_map: [("ideas".to_owned(), "todo".to_owned())].into(),
        ..Default::default()
    };
    let other = import_request(&project, board.as_bytes(), end);
    let other = stack.jobs().create_import(as_user(&owner, other)).await.unwrap().into_inner();
    assert!(other.created);
    let done = stack.finished(&owner, &other.job.unwrap().id).await;
    assert_eq!((done.state(), done.rows_done), (pb::JobState::Done, 3), "{done:?}");

    // A map to no status is the request's error.
    let end = pb::ImportEnd {
        format: pb::ExportFormat::Json.into(),
        dry_run: true,
        status_map: [("Ideas".to_owned(), "someday".to_owned())].into(),
        ..Default::default()
    };
    let request = import_request(&project, board.as_bytes(), end);
    let refused = stack.jobs().create_import(as_user(&owner, request)).await.unwrap_err();
    assert_eq!(bad_fields(&refused), ["status_map"]);
    stack.stop().await;
}

#[tokio::test]
async fn a_deleted_projects_jobs_that_have_not_ended_fail_and_say_so() {
    let env = TestEnv::new();
    // No instance runs jobs: they stay queued until the project goes.
    let mut stack = spawn_with(&env, &["--run-jobs=false"]).await;
    let owner = stack.user("owner@deleted-jobs.test").await;
    let project = stack.project(&owner, "DEL").await;
    let kept = stack.project(&owner, "KEP").await;
    let import = stack.import(&owner, &project, pb::ExportFormat::Csv, chained_rows().as_bytes(), false).await;
    let import = import.unwrap().job.unwrap();
    let export = stack.export(&owner, &project, pb::ExportFormat::Json, Default::default()).await.unwrap();
    let other = stack.export(&owner, &kept, pb::ExportFormat::Json, Default::default()).await.unwrap();

    let request = ppb::DeleteProjectRequest { id: project.clone(), expected_version: None, client: None };
    stack.projects.delete_project(as_user(&owner, request)).await.unwrap();
    let db = stack.db.clone();
    let ended = |id: String| {
        let db = db.clone();
        async move {
            let id = Uuid::parse_str(&id).unwrap();
            sqlx::query_as::<_, (String, Option<String>)>("SELECT state, error FROM job WHERE id = ?")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    eventually("the deleted project's jobs to fail", || {
        let state = ended(import.id.clone());
        async move { state.await.0 == "failed" }
    })
    .await;
    for job in [&import, &export] {
        assert_eq!(ended(job.id.clone()).await, ("failed".to_owned(), Some("its project was deleted".to_owned())));
    }
    assert_eq!(ended(other.id.clone()).await.0, "queued", "another project's job is left alone");
    // Each end is announced, to its requester, in the transaction that deleted the project's tasks.
    let ends: Vec<pb_events::JobEnded> = stack
        .outbox()
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(Payload::JobEnded(ended)) => Some(ended),
            _ => None,
        })
        .collect();
    let mut failed: Vec<(&str, &str, &str)> =
        ends.iter().map(|e| (e.job_id.as_str(), e.state.as_str(), e.error.as_str())).collect();
    failed.sort_unstable();
    let mut expected = vec![
        (import.id.as_str(), "failed", "its project was deleted"),
        (export.id.as_str(), "failed", "its project was deleted"),
    ];
    expected.sort_unstable();
    assert_eq!(failed, expected);
    assert!(ends.iter().all(|e| e.requester_id == owner.id.to_string()));
    stack.stop().await;
}
