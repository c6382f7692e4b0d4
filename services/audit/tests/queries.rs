//! Reading the log over gRPC, with real identity and project services: who sees which records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ordo_harness::Service;
use ordo_proto::audit::v1 as pb;
use ordo_proto::audit::v1::audit_service_client::AuditServiceClient;
use ordo_proto::identity::v1 as idpb;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use ordo_proto::project::v1 as prpb;
use ordo_proto::project::v1::project_service_client::ProjectServiceClient;
use ordo_testkit::TestEnv;
use tonic::transport::Channel;

const PASSWORD: &str = "correct horse battery staple";

struct Stack {
    identity: IdentityServiceClient<Channel>,
    projects: ProjectServiceClient<Channel>,
    audit: AuditServiceClient<Channel>,
    processes: ordo_harness::Stack,
}

async fn spawn(env: &TestEnv) -> Stack {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,ordo=info").with_test_writer().try_init();
    // Audit binds its queue before it serves gRPC, and the harness waits until it does: no event is
    // missed.
    let processes = ordo_harness::Stack::of([Service::Identity, Service::Project, Service::Audit])
        .args(Service::Identity, ["--hash-concurrency", "2"])
        .start(env)
        .await;
    Stack {
        identity: IdentityServiceClient::new(processes.channel(Service::Identity)),
        projects: ProjectServiceClient::new(processes.channel(Service::Project)),
        audit: AuditServiceClient::new(processes.channel(Service::Audit)),
        processes,
    }
}

fn as_user<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

impl Stack {
    /// Registers and logs in; returns (user id, access token). Waits until audit accepts the token.
    async fn user(&mut self, email: &str) -> (String, String) {
        let register = idpb::RegisterRequest {
            email: email.into(),
            password: PASSWORD.into(),
            display_name: "Someone".into(),
            client: Some(idpb::ClientInfo { ip: "198.51.100.4".into(), user_agent: "queries-tests/1.0".into() }),
        };
        let user = self.identity.register(register).await.unwrap().into_inner().user.unwrap();
        let login = idpb::LoginRequest { email: email.into(), password: PASSWORD.into(), client: None };
        let tokens = self.identity.login(login).await.unwrap().into_inner().tokens.unwrap();
        for _ in 0..100 {
            match self.audit.verify_log(as_user(&tokens.access_token, pb::VerifyLogRequest::default())).await {
                Err(status) if status.code() == tonic::Code::Unauthenticated => {}
                Err(status) if status.code() == tonic::Code::Unavailable => {}
                _ => break,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (user.id, tokens.access_token)
    }

    async fn list(
        &mut self,
        token: &str,
        request: pb::ListRecordsRequest,
    ) -> Result<pb::ListRecordsResponse, tonic::Code> {
        self.audit.list_records(as_user(token, request)).await.map(tonic::Response::into_inner).map_err(|s| s.code())
    }

    async fn stop(self) {
        self.processes.stop().await.unwrap();
    }
}

#[tokio::test]
async fn admins_see_everything_project_managers_their_project_and_others_nothing() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let (root_id, root) = stack.user("root@example.com").await;
    let (owner_id, owner) = stack.user("owner@example.com").await;
    let (member_id, member) = stack.user("member@example.com").await;
    let (_, stranger) = stack.user("stranger@example.com").await;

    let create = prpb::CreateProjectRequest { name: "Audited".into(), key: "AUD".into(), ..Default::default() };
    let project = stack.projects.create_project(as_user(&owner, create)).await.unwrap().into_inner().project.unwrap();
    let add = prpb::AddMemberRequest {
        project_id: project.id.clone(),
        user_id: member_id.clone(),
        role: prpb::ProjectRole::Member.into(),
        ..Default::default()
    };
    stack.projects.add_member(as_user(&owner, add)).await.unwrap();

    // 4 registrations, 4 logins, the creation and the member added: 10 events in all.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let everything = loop {
        let page = stack
            .list(
                &root,
                pb::ListRecordsRequest {
                    page: Some(pb::PageRequest { limit: 100, ..Default::default() }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if page.records.len() >= 10 {
            break page.records;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {} records arrived", page.records.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(everything.len(), 10);
    let seqs: Vec<u64> = everything.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    let registered = everything.iter().find(|r| r.action == "identity.user_registered").unwrap();
    assert_eq!((registered.ip.as_str(), registered.user_agent.as_str()), ("198.51.100.4", "queries-tests/1.0"));
    assert_eq!(everything[0].prev_hash, "0".repeat(64));
    assert_eq!(everything[1].prev_hash, everything[0].hash);

    // Filters and pages.
    let by_owner = pb::ListRecordsRequest { actor_id: owner_id.clone(), ..Default::default() };
    let actions: Vec<String> =
        stack.list(&root, by_owner).await.unwrap().records.into_iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        ["identity.user_registered", "identity.login_succeeded", "project.created", "project.member_added"]
    );
    let mut cursor = String::new();
    let mut paged = Vec::new();
    loop {
        let request = pb::ListRecordsRequest {
            page: Some(pb::PageRequest { limit: 3, cursor: cursor.clone() }),
            ..Default::default()
        };
        let page = stack.list(&root, request).await.unwrap();
        paged.extend(page.records.iter().map(|r| r.seq));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(paged, seqs);

    // The owner sees the project's records, and only with its id.
    let of_project = pb::ListRecordsRequest { project_id: project.id.clone(), ..Default::default() };
    let mine = stack.list(&owner, of_project.clone()).await.unwrap().records;
    let actions: Vec<&str> = mine.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["project.created", "project.member_added"]);
    assert!(mine.iter().all(|r| r.project_id == project.id));
    assert_eq!(stack.list(&owner, pb::ListRecordsRequest::default()).await.unwrap_err(), tonic::Code::PermissionDenied);
    // A plain member and a stranger see nothing.
    assert_eq!(stack.list(&member, of_project.clone()).await.unwrap_err(), tonic::Code::PermissionDenied);
    assert_eq!(stack.list(&stranger, of_project).await.unwrap_err(), tonic::Code::PermissionDenied);

    // Verifying is for admins.
    let denied = stack.audit.verify_log(as_user(&owner, pb::VerifyLogRequest::default())).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let verdict = stack.audit.verify_log(as_user(&root, pb::VerifyLogRequest::default())).await.unwrap().into_inner();
    assert_eq!((verdict.ok, verdict.checked, verdict.first_bad_seq), (true, 10, None));
    // Nothing archived: the chain starts at seq 1 from the all-zero genesis hash.
    assert_eq!((verdict.anchor_seq, verdict.anchor_prev_hash.as_str()), (Some(1), "0".repeat(64).as_str()));
    assert_eq!(verdict.next_cursor, "", "one part reached the head");
    // In parts of 4: each names the next, and together they check the 10 records once.
    let (mut parts, mut cursor) = (Vec::new(), String::new());
    loop {
        let request = pb::VerifyLogRequest { limit: 4, cursor: cursor.clone() };
        let part = stack.audit.verify_log(as_user(&root, request)).await.unwrap().into_inner();
        parts.push((part.ok, part.checked, part.anchor_seq));
        if part.next_cursor.is_empty() {
            break;
        }
        cursor = part.next_cursor;
    }
    assert_eq!(parts, [(true, 4, Some(1)), (true, 4, Some(5)), (true, 2, Some(9))]);
    // A limit past the bound and a cursor we did not issue are refused.
    for request in [
        pb::VerifyLogRequest { limit: 200_001, cursor: String::new() },
        pb::VerifyLogRequest { limit: 4, cursor: "not a cursor".into() },
    ] {
        let refused = stack.audit.verify_log(as_user(&root, request)).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    }
    assert!(!root_id.is_empty());

    stack.stop().await;
    env.cleanup().await.unwrap();
}
