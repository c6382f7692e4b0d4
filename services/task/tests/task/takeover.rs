//! A job whose instance dies: the real `ordo-task` binary, started beside the test's stack as a
//! second instance of the service, runs an import and is killed (SIGKILL) mid-run; a third
//! instance takes the job over once the dead one's lease has run out, resumes after the last chunk
//! the dead one committed, and finishes it, creating no task twice.

use std::process::Stdio;
use std::time::Duration;

use ordo_harness::Service;
use tokio::process::{Child, Command};

use super::imports::{ROWS, assert_imported_once, chained_rows};
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (state, rows_done): (String, u64) = sqlx::query_as("SELECT state, rows_done FROM job WHERE id = ?")
            .bind(id)
            .fetch_one(&stack.db)
            .await
            .unwrap();
        assert_ne!(state, "done", "the import ended before it could be killed");
        if rows_done > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the import never committed a chunk");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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
