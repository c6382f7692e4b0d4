//! Exports as background jobs: queued by a request, run by the service's job runner, written to
//! object storage as CSV or JSON; who may ask and see them; cancelling; and the claims behind them
//! (one attempt at a time, a dead attempt's job taken over, its late writes refused).

use std::time::Duration;

use ordo_events::OutboxSignal;
use ordo_harness::Service;
use ordo_proto::task::v1::job_service_client::JobServiceClient;
use ordo_task::app::ports::{JobOutcome, JobStore};
use ordo_task::domain::{Job, JobKind, JobResult, JobState};
use ordo_task::infra::MySqlTaskStore;
use ordo_task::infra::export_file::CSV_COLUMNS;
use time::OffsetDateTime;
use tonic::transport::Channel;

use super::*;

impl Stack {
    pub(super) fn jobs(&self) -> JobServiceClient<Channel> {
        JobServiceClient::new(self.processes.as_ref().unwrap().channel(Service::Task))
    }

    pub(super) async fn export(
        &self,
        by: &User,
        project: &str,
        format: pb::ExportFormat,
        filter: pb::ListTasksRequest,
    ) -> Result<pb::Job, tonic::Status> {
        let request = pb::CreateExportRequest {
            project_id: project.to_owned(),
            format: format.into(),
            filter: Some(filter),
            include: Vec::new(),
        };
        Ok(self.jobs().create_export(as_user(by, request)).await?.into_inner().job.unwrap())
    }

    async fn job(&self, by: &User, id: &str) -> Result<pb::Job, tonic::Status> {
        Ok(self.jobs().get_job(as_user(by, pb::GetJobRequest { id: id.to_owned() })).await?.into_inner().job.unwrap())
    }

    /// The job once it has ended.
    pub(super) async fn finished(&self, by: &User, id: &str) -> pb::Job {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let job = self.job(by, id).await.unwrap();
            if [pb::JobState::Done, pb::JobState::Failed, pb::JobState::Cancelled].contains(&job.state()) {
                return job;
            }
            assert!(tokio::time::Instant::now() < deadline, "job {id} did not end: {job:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The bytes of the object `key`.
    pub(super) async fn object(&self, key: &str) -> Vec<u8> {
        let object = self.s3.get_object().bucket(&self.bucket).key(key).send().await.unwrap();
        object.body.collect().await.unwrap().into_bytes().to_vec()
    }
}

/// The key of the file of `job`'s attempt.
fn export_key(job: &pb::Job, extension: &str) -> String {
    format!("exports/{}/{}/{}.{extension}", job.project_id, job.id, job.attempts)
}

#[tokio::test]
async fn exports_write_the_filtered_tasks_as_csv_and_json_for_their_requester_alone() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let owner = stack.user("owner@export.test").await;
    let viewer = stack.user("viewer@export.test").await;
    let stranger = stack.user("stranger@export.test").await;
    let project = stack.project(&owner, "EXP").await;
    stack.add(&owner, &project, &viewer, ppb::ProjectRole::Viewer).await;
    let mut todo = Vec::new();
    for n in 0..7 {
        let title = if n == 0 { "=HYPERLINK(\"http://evil.test\",\"click\")".to_owned() } else { format!("Todo {n}") };
        let request = pb::CreateTaskRequest {
            status: pb::TaskStatus::Todo.into(),
            labels: vec!["export".into(), format!("n{n}")],
            description: Some(format!("Line one, \"quoted\"\nline two of {n}")),
            ..new_task(&project, &title)
        };
        todo.push(stack.create(&owner, request).await);
    }
    for n in 0..3 {
        let request =
            pb::CreateTaskRequest { status: pb::TaskStatus::Done.into(), ..new_task(&project, &format!("Done {n}")) };
        stack.create(&owner, request).await;
    }

    // A viewer exports the `todo` tasks as CSV: queued at once, then done by the runner.
    let only_todo = pb::ListTasksRequest { statuses: vec![pb::TaskStatus::Todo.into()], ..Default::default() };
    let queued = stack.export(&viewer, &project, pb::ExportFormat::Csv, only_todo).await.unwrap();
    assert_eq!(queued.kind, "export");
    assert_eq!(queued.format(), pb::ExportFormat::Csv);
    assert!(queued.download_url.is_empty());
    let done = stack.finished(&viewer, &queued.id).await;
    assert_eq!(done.state(), pb::JobState::Done, "{done:?}");
    assert_eq!((done.rows_done, done.rows_total), (7, Some(7)));
    assert_eq!(done.attempts, 1);
    assert!(done.download_url.starts_with("http"), "{}", done.download_url);
    assert!(done.result_expires_at.is_some() && done.finished_at.is_some());

    let csv = stack.object(&export_key(&done, "csv")).await;
    assert_eq!(done.result_bytes, Some(csv.len() as u64));
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), CSV_COLUMNS);
    let column = |name: &str| CSV_COLUMNS.iter().position(|c| *c == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let mut exported: Vec<&str> = rows.iter().map(|row| &row[column("id")]).collect();
    let mut expected: Vec<&str> = todo.iter().map(|t| t.id.as_str()).collect();
    exported.sort_unstable();
    expected.sort_unstable();
    assert_eq!(exported, expected, "every todo task once, and nothing else");
    let formula = rows.iter().find(|row| row[column("id")] == todo[0].id).unwrap();
    assert_eq!(&formula[column("title")], "'=HYPERLINK(\"http://evil.test\",\"click\")", "neutralised");
    assert_eq!(&formula[column("description")], "Line one, \"quoted\"\nline two of 0");
    assert_eq!(&formula[column("labels")], "export\nn0");
    assert_eq!(&formula[column("status")], "todo");
    assert_eq!(&formula[column("key")], todo[0].key);

    // The whole project as JSON: each task as the API shows it.
    let queued =
        stack.export(&viewer, &project, pb::ExportFormat::Json, pb::ListTasksRequest::default()).await.unwrap();
    let done = stack.finished(&viewer, &queued.id).await;
    assert_eq!(done.state(), pb::JobState::Done, "{done:?}");
    let tasks: Vec<serde_json::Value> =
        serde_json::from_slice(&stack.object(&export_key(&done, "json")).await).unwrap();
    assert_eq!(tasks.len(), 10);
    let first = tasks.iter().find(|t| t["id"] == todo[0].id.as_str()).unwrap();
    assert_eq!(first["title"], todo[0].title.as_str(), "JSON carries titles as they are");
    assert_eq!(first["number"], todo[0].number);
    assert_eq!(first["labels"], serde_json::json!(["export", "n0"]));
    assert_eq!(first["reporter_id"], owner.id.to_string());

    // Only the requester sees a job; a stranger may not export.
    assert_eq!(stack.job(&owner, &queued.id).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(stack.job(&stranger, &queued.id).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(stack.job(&viewer, "not-a-job").await.unwrap_err().code(), Code::NotFound);
    let refused = stack.export(&stranger, &project, pb::ExportFormat::Csv, pb::ListTasksRequest::default()).await;
    assert_eq!(refused.unwrap_err().code(), Code::NotFound);

    // A bad format or filter is the request's error, named.
    let refused = stack.export(&viewer, &project, pb::ExportFormat::Unspecified, pb::ListTasksRequest::default()).await;
    assert_eq!(bad_fields(&refused.unwrap_err()), ["format"]);
    let filter = pb::ListTasksRequest { label: "l".repeat(51), ..Default::default() };
    let refused = stack.export(&viewer, &project, pb::ExportFormat::Csv, filter).await.unwrap_err();
    assert_eq!(bad_fields(&refused), ["label"]);

    stack.stop().await;
}

#[tokio::test]
async fn a_cancelled_export_ends_cancelled_and_stays_so() {
    let env = TestEnv::new();
    // This instance runs no job, so the job is still queued when it is cancelled.
    let mut stack = spawn_with(&env, &["--run-jobs", "false"]).await;
    let owner = stack.user("owner@cancel.test").await;
    let project = stack.project(&owner, "CAN").await;
    stack.create(&owner, new_task(&project, "One")).await;
    let queued = stack.export(&owner, &project, pb::ExportFormat::Csv, pb::ListTasksRequest::default()).await.unwrap();

    let request = pb::CancelJobRequest { id: queued.id.clone() };
    let cancelled = stack.jobs().cancel_job(as_user(&owner, request.clone())).await.unwrap().into_inner().job.unwrap();
    assert_eq!(cancelled.state(), pb::JobState::Cancelled);
    assert!(cancelled.finished_at.is_some() && cancelled.download_url.is_empty());
    // Cancelling again changes nothing; the job is not run after.
    let again = stack.jobs().cancel_job(as_user(&owner, request)).await.unwrap().into_inner().job.unwrap();
    assert_eq!(again.finished_at, cancelled.finished_at);
    let store = MySqlTaskStore::new(stack.db.clone(), OutboxSignal::default());
    let now = OffsetDateTime::now_utc();
    assert!(store.claim_job(now, now + Duration::from_secs(30)).await.unwrap().is_none(), "nothing to run");
    assert!(stack.objects().await.is_empty());

    stack.stop().await;
}

#[tokio::test]
async fn a_user_may_have_five_jobs_queued_or_running_at_once() {
    let env = TestEnv::new();
    // This instance runs no job, so every job stays queued until it is cancelled.
    let mut stack = spawn_with(&env, &["--run-jobs", "false"]).await;
    let owner = stack.user("owner@cap.test").await;
    let other = stack.user("other@cap.test").await;
    let project = stack.project(&owner, "CAP").await;
    stack.add(&owner, &project, &other, ppb::ProjectRole::Viewer).await;
    let mut queued = Vec::new();
    for _ in 0..5 {
        queued.push(
            stack.export(&owner, &project, pb::ExportFormat::Csv, pb::ListTasksRequest::default()).await.unwrap(),
        );
    }

    let refused = stack.export(&owner, &project, pb::ExportFormat::Csv, pb::ListTasksRequest::default()).await;
    let refused = refused.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(refused.metadata().get("retry-after").unwrap(), "10");
    // Another user is not held back by them; an ended job frees its place.
    stack.export(&other, &project, pb::ExportFormat::Json, pb::ListTasksRequest::default()).await.unwrap();
    let request = pb::CancelJobRequest { id: queued[0].id.clone() };
    stack.jobs().cancel_job(as_user(&owner, request)).await.unwrap();
    stack.export(&owner, &project, pb::ExportFormat::Csv, pb::ListTasksRequest::default()).await.unwrap();

    // Asked for twelve at once, a user still gets five: their requests queue jobs one at a time.
    let eager = stack.user("eager@cap.test").await;
    stack.add(&owner, &project, &eager, ppb::ProjectRole::Viewer).await;
    let at_once = (0..12).map(|_| stack.export(&eager, &project, pb::ExportFormat::Csv, Default::default()));
    let answers = futures::future::join_all(at_once).await;
    let queued = answers.iter().filter(|a| a.is_ok()).count();
    let refused: Vec<Code> = answers.iter().filter_map(|a| a.as_ref().err().map(tonic::Status::code)).collect();
    assert_eq!((queued, refused), (5, vec![Code::ResourceExhausted; 7]));
    let (unfinished,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM job WHERE requester_id = ? AND state IN ('queued', 'running')")
            .bind(eager.id)
            .fetch_one(&stack.db)
            .await
            .unwrap();
    assert_eq!(unfinished, 5);

    stack.stop().await;
}

#[tokio::test]
async fn one_attempt_holds_a_job_and_a_dead_attempts_job_is_taken_over_with_its_late_writes_refused() {
    let env = TestEnv::new();
    // The service runs no job itself: the test's claims are the only ones.
    let stack = spawn_with(&env, &["--run-jobs", "false"]).await;
    let store = MySqlTaskStore::new(stack.db.clone(), OutboxSignal::default());
    let (project, requester) = (Uuid::now_v7(), Uuid::now_v7());
    let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let queue = |n: i64| {
        Job::queue(Uuid::now_v7(), project, requester, JobKind::Export, "{}".into(), start + time::Duration::seconds(n))
    };
    let (older, newer) = (queue(0), queue(1));
    assert!(store.insert_job(&newer, u64::MAX).await.unwrap());
    assert!(store.insert_job(&older, u64::MAX).await.unwrap());

    // Two claims at once take different jobs (SKIP LOCKED), the oldest first; a third finds none.
    let now = OffsetDateTime::now_utc();
    let lease = now + Duration::from_secs(1);
    let (a, b) = tokio::join!(store.claim_job(now, lease), store.claim_job(now, lease));
    let mut claimed: Vec<Job> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    claimed.sort_by_key(|job| job.created_at);
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), [older.id, newer.id]);
    assert!(claimed.iter().all(|j| j.state == JobState::Running && j.attempt == 1));
    assert!(store.claim_job(now, lease).await.unwrap().is_none());

    // The attempt holding `older` records progress; then it dies, and its lease runs out.
    assert!(store.job_progress(older.id, 1, 500, None, now, lease).await.unwrap());
    let later = lease + Duration::from_millis(1);
    let taken = store.claim_job(later, later + Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!((taken.id, taken.attempt, taken.rows_done), (older.id, 2, 0), "a new attempt from the start");
    // The dead attempt's late writes change nothing.
    assert!(!store.job_progress(older.id, 1, 900, None, later, later + Duration::from_secs(30)).await.unwrap());
    let late = JobOutcome::Done {
        result: JobResult { object_key: "exports/late".into(), size_bytes: 1 },
        rows: 900,
        expires_at: later,
    };
    assert!(!store.finish_job(older.id, 1, &late, later).await.unwrap());
    // The holding attempt ends it, its file kept until its expiry.
    let expires_at = later + Duration::from_secs(3600);
    let result = JobResult { object_key: "exports/kept.csv".into(), size_bytes: 42 };
    let outcome = JobOutcome::Done { result: result.clone(), rows: 3, expires_at };
    assert!(store.finish_job(older.id, 2, &outcome, later).await.unwrap());
    let finished = store.job(older.id).await.unwrap().unwrap();
    assert_eq!(finished.state, JobState::Done);
    assert_eq!((finished.rows_done, finished.rows_total, finished.result), (3, Some(3), Some(result)));
    assert_eq!(finished.finished_at, Some(later.replace_nanosecond(later.nanosecond() / 1_000 * 1_000).unwrap()));
    let scheduled: Vec<String> =
        sqlx::query_scalar("SELECT object_key FROM object_deletion").fetch_all(&stack.db).await.unwrap();
    assert_eq!(scheduled, ["exports/kept.csv"], "only the kept file, due at its expiry; the late one not at all");
    assert!(!store.finish_job(older.id, 2, &outcome, later).await.unwrap(), "an ended job ends once");

    // A cancelled job refuses its attempt's progress and end; a failure is recorded with its reason.
    assert!(store.cancel_job(newer.id, later).await.unwrap());
    assert!(!store.job_progress(newer.id, 1, 1, None, later, later).await.unwrap());
    let failed = JobOutcome::Failed { error: "boom".into() };
    assert!(!store.finish_job(newer.id, 1, &failed, later).await.unwrap());
    assert!(!store.cancel_job(newer.id, later).await.unwrap(), "cancelled once");
    assert_eq!(store.job(newer.id).await.unwrap().unwrap().state, JobState::Cancelled);
    let third = queue(2);
    assert!(store.insert_job(&third, u64::MAX).await.unwrap());
    let claimed = store.claim_job(later, later + Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!(claimed.id, third.id);
    assert!(store.finish_job(third.id, 1, &failed, later).await.unwrap());
    let third = store.job(third.id).await.unwrap().unwrap();
    assert_eq!((third.state, third.error.as_deref()), (JobState::Failed, Some("boom")));

    stack.stop().await;
}
