//! A job whose instance dies, end to end: every request goes through the gateway's REST API, and the
//! jobs run in the real `ordo-task` binary, started beside the test's stack as more instances of the
//! service. An import's instance is killed (SIGKILL) mid-run; a third instance takes the job over
//! once the dead one's lease has run out, resumes after the last chunk the dead one committed, and
//! finishes it, creating no task twice. An export killed the same way is written again, whole, by the
//! instance that takes it over: the file its job links to holds every task once, and the killed
//! attempt leaves no file.

use std::process::Stdio;
use std::time::Duration;

use ordo_harness::Service;
use reqwest::StatusCode;
use serde_json::{Value, json};
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

/// A client of the stack's gateway, as `user`.
struct Rest {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Rest {
    fn new(stack: &Stack, user: &User) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Self { client, base: stack.gateway(), token: user.token.clone() }
    }

    /// `POST /projects/{project}/imports` of `file` as CSV: the job it queued.
    async fn import(&self, project: &str, file: String) -> Value {
        let boundary = "t4keoverb0undary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"tasks.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n"
        );
        body.push_str(&file);
        body.push_str(&format!("\r\n--{boundary}--\r\n"));
        let response = self
            .client
            .post(format!("{}/projects/{project}/imports", self.base))
            .bearer_auth(&self.token)
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .unwrap();
        Self::json(response, StatusCode::ACCEPTED).await
    }

    /// `POST /projects/{project}/exports` of every task as CSV: the job it queued.
    async fn export(&self, project: &str) -> Value {
        let response = self
            .client
            .post(format!("{}/projects/{project}/exports", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"format": "csv"}))
            .send()
            .await
            .unwrap();
        Self::json(response, StatusCode::ACCEPTED).await
    }

    /// `GET /jobs/{id}` once the job has ended, asked for every 50 ms for up to two minutes.
    async fn ended(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let response =
                self.client.get(format!("{}/jobs/{id}", self.base)).bearer_auth(&self.token).send().await.unwrap();
            let job = Self::json(response, StatusCode::OK).await;
            if ["done", "failed", "cancelled"].contains(&job["state"].as_str().unwrap()) {
                return job;
            }
            assert!(tokio::time::Instant::now() < deadline, "the job did not end: {job}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn json(response: reqwest::Response, expected: StatusCode) -> Value {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, expected, "{body}");
        body
    }
}

/// The id of a job as the gateway answers it.
fn job_id(job: &Value) -> Uuid {
    Uuid::parse_str(job["id"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn an_import_whose_instance_is_killed_mid_run_is_finished_by_another_with_no_task_twice() {
    let env = TestEnv::new();
    // The stack's own instance answers the requests and runs no job.
    let mut stack = spawn_behind_gateway(&env, &["--run-jobs=false"]).await;
    let owner = stack.user("owner@killed.test").await;
    let project = stack.project(&owner, "KIL").await;
    let rest = Rest::new(&stack, &owner);
    let job = rest.import(&project, chained_rows()).await;
    assert_eq!(job["state"], "queued", "{job}");

    // A second instance takes the job; once it has committed a chunk, it is killed.
    let mut doomed = another_instance(&stack, 2).await;
    first_progress(&stack, job_id(&job)).await;
    doomed.kill().await.unwrap();
    let (state, attempt, rows_done): (String, u32, u64) =
        sqlx::query_as("SELECT state, attempt, rows_done FROM job WHERE id = ?")
            .bind(job_id(&job))
            .fetch_one(&stack.db)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempt), ("running", 1), "left running by the dead instance");
    assert!(rows_done > 0 && rows_done < ROWS as u64, "killed mid-run: {rows_done} of {ROWS}");

    // A third instance takes it over once the lease has run out, and finishes it.
    let mut survivor = another_instance(&stack, 30).await;
    let ended = rest.ended(job["id"].as_str().unwrap()).await;
    assert_eq!((&ended["state"], &ended["attempts"]), (&json!("done"), &json!(2)), "{ended}");
    assert_eq!(ended["progress"], json!({"rows_done": ROWS, "rows_total": ROWS}));
    assert_eq!(ended["import"]["tasks"], ROWS);
    let done = stack.finished(&owner, job["id"].as_str().unwrap()).await;
    assert_imported_once(&stack, &done, &project).await;
    survivor.kill().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn an_export_whose_instance_is_killed_mid_run_is_written_whole_by_another_with_no_row_twice() {
    let env = TestEnv::new();
    let mut stack = spawn_behind_gateway(&env, &["--run-jobs=false"]).await;
    let owner = stack.user("owner@killed-export.test").await;
    let project = stack.project(&owner, "KEX").await;
    let rest = Rest::new(&stack, &owner);
    // The project's tasks (twice the rows of one file: an export of a dozen pages), imported by an
    // instance that runs jobs.
    let mut helper = another_instance(&stack, 30).await;
    for file in [chained_rows(), chained_rows().replace(",Row ", ",Other row ")] {
        let job = rest.import(&project, file).await;
        assert_eq!(rest.ended(job["id"].as_str().unwrap()).await["state"], "done");
    }
    helper.kill().await.unwrap();
    let tasks = 2 * ROWS;

    // An export of them, taken by a second instance that is killed once it has written a page.
    let job = rest.export(&project).await;
    let id = job["id"].as_str().unwrap();
    let mut doomed = another_instance(&stack, 2).await;
    first_progress(&stack, job_id(&job)).await;
    doomed.kill().await.unwrap();

    // A third instance takes it over once the lease has run out and writes the file again, whole.
    let mut survivor = another_instance(&stack, 30).await;
    let ended = rest.ended(id).await;
    assert_eq!((&ended["state"], &ended["attempts"]), (&json!("done"), &json!(2)), "{ended}");
    assert_eq!(ended["progress"]["rows_done"], tasks);
    // The file the job links to: every task once.
    let url = ended["result"]["url"].as_str().unwrap();
    let csv = rest.client.get(url).send().await.unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let csv = csv.bytes().await.unwrap();
    assert_eq!(ended["result"]["size_bytes"], csv.len());
    let mut reader = csv::Reader::from_reader(csv.as_ref());
    let ids: Vec<String> = reader.records().map(|row| row.unwrap()[0].to_owned()).collect();
    assert_eq!(ids.len(), tasks, "every task once");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), tasks, "no row twice");
    // The killed attempt left no file.
    let listed = stack.s3.list_objects_v2().bucket(&stack.bucket).prefix(format!("exports/{project}/")).send().await;
    let keys: Vec<String> = listed.unwrap().contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
    assert_eq!(keys, [format!("exports/{project}/{id}/2.csv")]);
    survivor.kill().await.unwrap();
    stack.stop().await;
}
