//! A job whose instance dies: the real `ordo-task` binary, started beside the test's stack as a
//! second instance of the service, runs an import and is killed (SIGKILL) mid-run; a third
//! instance takes the job over once the dead one's lease has run out, resumes after the last chunk
//! the dead one committed, and finishes it, creating no task twice. An export killed the same way is
//! written again, whole, by the instance that takes it over, and the killed attempt leaves no file.

use std::process::Stdio;
use std::time::Duration;

use ordo_harness::Service;
use tokio::process::{Child, Command};

use super::imports::{ROWS, assert_imported_once, chained_rows, first_progress};
use super::*;

/// Flags this file sets on the instances it starts, in place of the stack's.
const OWN_FLAGS: [&str; 3] = ["--run-jobs", "--job-lease-secs", "--job-poll-ms"];

/// Starts another instance of the task service (its binary, with the stack's flags and addresses of
/// its own) that runs jobs under a lease of `lease_secs`, and waits until it is ready.
async fn another_instance(stack: &Stack, lease_secs: u64) -> Child {
    let grpc = ordo_testkit::free_listener().await.unwrap().local_addr().unwrap();
    let ops = ordo_testkit::free_listener().await.unwrap().local_addr().unwrap();
    let flags: Vec<&String> = stack
        .processes
        .as_ref()
        .unwrap()
        .command_line(Service::Task)
        .iter()
        .filter(|flag| !OWN_FLAGS.iter().any(|own| flag.starts_with(own)))
        .collect();
    let child = Command::new(env!("CARGO_BIN_EXE_ordo-task"))
        .args(flags)
        .arg(format!("--grpc-addr={grpc}"))
        .arg(format!("--ops-addr={ops}"))
        .arg("--run-jobs=true")
        .arg(format!("--job-lease-secs={lease_secs}"))
        .arg("--job-poll-ms=50")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !matches!(ordo_testkit::http_get(ops, "/readyz").await, Ok((200, _))) {
        assert!(tokio::time::Instant::now() < deadline, "the instance did not get ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

#[tokio::test]
async fn an_import_whose_instance_is_killed_mid_run_is_finished_by_another_with_no_task_twice() {
    let env = TestEnv::new();
    // The stack's own instance answers the requests and runs no job.
    let mut stack = spawn_with(&env, &["--run-jobs=false"]).await;
    let owner = stack.user("owner@killed.test").await;
    let project = stack.project(&owner, "KIL").await;
    let request = pb::CreateImportRequest {
        project_id: project.clone(),
        format: pb::ExportFormat::Csv.into(),
        file: chained_rows().into_bytes(),
        dry_run: false,
        status_map: Default::default(),
    };
    let job = stack.jobs().create_import(as_user(&owner, request)).await.unwrap().into_inner().job.unwrap();
    let id = Uuid::parse_str(&job.id).unwrap();

    // A second instance takes the job; once it has committed a chunk, it is killed.
    let mut doomed = another_instance(&stack, 2).await;
    first_progress(&stack, id).await;
    doomed.kill().await.unwrap();
    let (state, attempt, rows_done): (String, u32, u64) =
        sqlx::query_as("SELECT state, attempt, rows_done FROM job WHERE id = ?")
            .bind(id)
            .fetch_one(&stack.db)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempt), ("running", 1), "left running by the dead instance");
    assert!(rows_done > 0 && rows_done < ROWS as u64, "killed mid-run: {rows_done} of {ROWS}");

    // A third instance takes it over once the lease has run out, and finishes it.
    let mut survivor = another_instance(&stack, 30).await;
    let done = stack.finished(&owner, &job.id).await;
    assert_eq!(done.attempts, 2, "the killed attempt and the one that took over");
    assert_imported_once(&stack, &done, &project).await;
    survivor.kill().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn an_export_whose_instance_is_killed_mid_run_is_written_whole_by_another_with_no_row_twice() {
    let env = TestEnv::new();
    let mut stack = spawn_with(&env, &["--run-jobs=false"]).await;
    let owner = stack.user("owner@killed-export.test").await;
    let project = stack.project(&owner, "KEX").await;
    // The project's tasks (twice the rows of one file: an export of a dozen pages), imported by an
    // instance that runs jobs.
    let mut helper = another_instance(&stack, 30).await;
    for file in [chained_rows(), chained_rows().replace(",Row ", ",Other row ")] {
        let request = pb::CreateImportRequest {
            project_id: project.clone(),
            format: pb::ExportFormat::Csv.into(),
            file: file.into_bytes(),
            dry_run: false,
            status_map: Default::default(),
        };
        let job = stack.jobs().create_import(as_user(&owner, request)).await.unwrap().into_inner().job.unwrap();
        assert_eq!(stack.finished(&owner, &job.id).await.state(), pb::JobState::Done);
    }
    helper.kill().await.unwrap();
    let tasks = 2 * ROWS;

    // An export of them, taken by a second instance that is killed once it has written a page.
    let request = pb::CreateExportRequest {
        project_id: project.clone(),
        format: pb::ExportFormat::Csv.into(),
        filter: Some(pb::ListTasksRequest::default()),
        include: Vec::new(),
    };
    let job = stack.jobs().create_export(as_user(&owner, request)).await.unwrap().into_inner().job.unwrap();
    let id = Uuid::parse_str(&job.id).unwrap();
    let mut doomed = another_instance(&stack, 2).await;
    first_progress(&stack, id).await;
    doomed.kill().await.unwrap();

    // A third instance takes it over once the lease has run out and writes the file again, whole.
    let mut survivor = another_instance(&stack, 30).await;
    let done = stack.finished(&owner, &job.id).await;
    assert_eq!(done.state(), pb::JobState::Done, "{done:?}");
    assert_eq!((done.attempts, done.rows_done), (2, tasks as u64));
    let csv = stack.object(&format!("exports/{project}/{}/2.csv", job.id)).await;
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let ids: Vec<String> = reader.records().map(|row| row.unwrap()[0].to_owned()).collect();
    assert_eq!(ids.len(), tasks, "every task once");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), tasks, "no row twice");
    // The killed attempt left no file.
    let listed = stack.s3.list_objects_v2().bucket(&stack.bucket).prefix(format!("exports/{project}/")).send().await;
    let keys: Vec<String> = listed.unwrap().contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
    assert_eq!(keys, [format!("exports/{project}/{}/2.csv", job.id)]);
    survivor.kill().await.unwrap();
    stack.stop().await;
}
