//! The project service over real gRPC, MariaDB, Redis and RabbitMQ, with a real identity service
//! issuing the tokens: what the gateway's end-to-end suite cannot see from outside (the events on
//! the exchange, the access cache, the reaction to identity's events).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::StreamExt as _;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use ordo_harness::Service;
use ordo_proto::events::v1::Envelope;
use ordo_proto::events::v1::envelope::Payload;
use ordo_proto::identity::v1 as idpb;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;
use ordo_proto::project::v1 as pb;
use ordo_proto::project::v1::project_service_client::ProjectServiceClient;
use ordo_testkit::TestEnv;
use prost::Message as _;
use sqlx::MySqlPool;
use tonic::transport::Channel;
use uuid::Uuid;

/// Identity and the project service of one test.
struct Stack {
    identity: IdentityServiceClient<Channel>,
    projects: ProjectServiceClient<Channel>,
    /// The project service's own schema, to look behind its back.
    db: MySqlPool,
    processes: ordo_harness::Stack,
}

/// A signed-up user.
#[derive(Clone)]
struct User {
    id: Uuid,
    token: String,
}

fn client_info() -> Option<pb::ClientInfo> {
    Some(pb::ClientInfo { ip: "203.0.113.9".into(), user_agent: "project-tests/1.0".into() })
}

fn as_user<T>(user: &User, message: T) -> tonic::Request<T> {
    ordo_harness::bearer(&user.token, message)
}

async fn spawn(env: &TestEnv) -> Stack {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,ordo=info").with_test_writer().try_init();
    let processes = ordo_harness::Stack::of([Service::Identity, Service::Project])
        .args(Service::Identity, ["--hash-concurrency", "2"])
        .pool(Service::Project)
        .start(env)
        .await;
    let identity = IdentityServiceClient::new(processes.channel(Service::Identity));
    let projects = ProjectServiceClient::new(processes.channel(Service::Project));
    let db = processes.pool(Service::Project).clone();
    Stack { identity, projects, db, processes }
}

impl Stack {
    /// Registers `email` and logs it in.
    async fn user(&mut self, email: &str) -> User {
        let signed_up = self.processes.sign_up(email).await;
        let user = User { id: signed_up.id.parse().unwrap(), token: signed_up.access_token };
        // The project service may still be starting (migrations, identity's keys).
        for _ in 0..100 {
            let request = as_user(&user, pb::ListProjectsRequest::default());
            if self.projects.list_projects(request).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        user
    }

    async fn create(&mut self, owner: &User, key: &str) -> pb::Project {
        let request = pb::CreateProjectRequest {
            name: format!("Project {key}"),
            key: key.to_owned(),
            description: Some("What it is about".to_owned()),
            client: client_info(),
        };
        self.projects.create_project(as_user(owner, request)).await.unwrap().into_inner().project.unwrap()
    }

    async fn add(&mut self, by: &User, project: &str, user: &User, role: pb::ProjectRole) -> pb::Member {
        let request = pb::AddMemberRequest {
            project_id: project.to_owned(),
            user_id: user.id.to_string(),
            role: role.into(),
            client: client_info(),
        };
        self.projects.add_member(as_user(by, request)).await.unwrap().into_inner().member.unwrap()
    }

    async fn check(
        &mut self,
        caller: &User,
        project: &str,
        user: &User,
    ) -> Result<pb::CheckAccessResponse, tonic::Code> {
        let request = pb::CheckAccessRequest { project_id: project.to_owned(), user_id: user.id.to_string() };
        self.projects
            .check_access(as_user(caller, request))
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| s.code())
    }

    async fn stop(self) {
        self.processes.stop().await.unwrap();
    }
}

#[tokio::test]
async fn every_change_publishes_its_event_once_in_commit_order_with_what_consumers_need() {
    let env = TestEnv::new();
    let amqp =
        lapin::Connection::connect(&ordo_testkit::amqp_url(), lapin::ConnectionProperties::default()).await.unwrap();
    let channel = amqp.create_channel().await.unwrap();
    ordo_events::declare_exchange(&channel, &env.exchange()).await.unwrap();
    let queue = env.queue("project-events-probe");
    channel.queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            env.exchange().into(),
            "project.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let bob = stack.user("bob@example.com").await;
    let carol = stack.user("carol@example.com").await;

    let project = stack.create(&owner, "EVT").await;
    let id = project.id.clone();
    let p = &mut stack.projects;
    p.update_project(as_user(
        &owner,
        pb::UpdateProjectRequest {
            id: id.clone(),
            name: Some("Renamed".into()),
            client: client_info(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    // Nothing changes, nothing is announced.
    p.update_project(as_user(
        &owner,
        pb::UpdateProjectRequest { id: id.clone(), name: Some("Renamed".into()), ..Default::default() },
    ))
    .await
    .unwrap();
    p.archive_project(as_user(
        &owner,
        pb::ArchiveProjectRequest { id: id.clone(), client: client_info(), ..Default::default() },
    ))
    .await
    .unwrap();
    p.archive_project(as_user(&owner, pb::ArchiveProjectRequest { id: id.clone(), ..Default::default() }))
        .await
        .unwrap();
    p.unarchive_project(as_user(
        &owner,
        pb::UnarchiveProjectRequest { id: id.clone(), client: client_info(), ..Default::default() },
    ))
    .await
    .unwrap();
    stack.add(&owner, &id, &bob, pb::ProjectRole::Member).await;
    let p = &mut stack.projects;
    p.update_member(as_user(
        &owner,
        pb::UpdateMemberRequest {
            project_id: id.clone(),
            user_id: bob.id.to_string(),
            role: pb::ProjectRole::Admin.into(),
            client: client_info(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    // Bob leaves on his own.
    p.remove_member(as_user(
        &bob,
        pb::RemoveMemberRequest {
            project_id: id.clone(),
            user_id: bob.id.to_string(),
            client: client_info(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    stack.add(&owner, &id, &carol, pb::ProjectRole::Viewer).await;
    let p = &mut stack.projects;
    p.remove_member(as_user(
        &owner,
        pb::RemoveMemberRequest {
            project_id: id.clone(),
            user_id: carol.id.to_string(),
            client: client_info(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    p.delete_project(as_user(
        &owner,
        pb::DeleteProjectRequest { id: id.clone(), client: client_info(), ..Default::default() },
    ))
    .await
    .unwrap();

    let mut consumer = channel
        .basic_consume(queue.as_str().into(), "test".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 10 {
        let delivery =
            tokio::time::timeout_at(deadline, consumer.next()).await.expect("events in time").unwrap().unwrap();
        let envelope = Envelope::decode(&delivery.data[..]).unwrap();
        assert_eq!(delivery.properties.message_id().as_ref().map(|m| m.to_string()), Some(envelope.event_id.clone()));
        delivery.ack(BasicAckOptions::default()).await.unwrap();
        seen.push(envelope);
    }
    // Nothing more arrives: each change was announced once, and the no-ops not at all.
    assert!(tokio::time::timeout(Duration::from_millis(1500), consumer.next()).await.is_err());

    let types: Vec<&str> = seen.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(
        types,
        [
            "project.created",
            "project.updated",
            "project.archived",
            "project.unarchived",
            "project.member_added",
            "project.member_role_changed",
            "project.member_removed",
            "project.member_added",
            "project.member_removed",
            "project.deleted",
        ]
    );
    for envelope in &seen {
        assert_eq!(envelope.producer, "project");
        assert_eq!(envelope.project_id, id, "{}", envelope.r#type);
        assert_eq!(envelope.ip, "203.0.113.9", "{}", envelope.r#type);
        assert_eq!(envelope.user_agent, "project-tests/1.0", "{}", envelope.r#type);
    }
    let actors: Vec<&str> = seen.iter().map(|e| e.actor_id.as_str()).collect();
    let o = owner.id.to_string();
    let b = bob.id.to_string();
    assert_eq!(actors, [&o, &o, &o, &o, &o, &o, &b, &o, &o, &o].map(String::as_str));

    match seen[0].payload.as_ref().unwrap() {
        Payload::ProjectCreated(created) => {
            assert_eq!((created.key.as_str(), created.name.as_str()), ("EVT", "Project EVT"));
            assert_eq!(created.description, "What it is about");
            assert_eq!(created.created_by, o);
            assert_eq!((seen[0].entity_type.as_str(), seen[0].entity_id.as_str()), ("project", id.as_str()));
        }
        other => panic!("unexpected payload {other:?}"),
    }
    match seen[1].payload.as_ref().unwrap() {
        Payload::ProjectUpdated(updated) => {
            assert_eq!(updated.name, "Renamed");
            assert_eq!(updated.changed_fields, ["name"]);
            assert_eq!(updated.version, 2);
        }
        other => panic!("unexpected payload {other:?}"),
    }
    match seen[4].payload.as_ref().unwrap() {
        Payload::ProjectMemberAdded(added) => {
            assert_eq!((added.user_id.as_str(), added.role.as_str()), (b.as_str(), "member"));
            assert_eq!((added.project_key.as_str(), added.project_name.as_str()), ("EVT", "Renamed"));
            assert_eq!((seen[4].entity_type.as_str(), seen[4].entity_id.as_str()), ("project_member", b.as_str()));
        }
        other => panic!("unexpected payload {other:?}"),
    }
    match seen[5].payload.as_ref().unwrap() {
        Payload::ProjectMemberRoleChanged(changed) => {
            assert_eq!((changed.old_role.as_str(), changed.new_role.as_str()), ("member", "admin"));
        }
        other => panic!("unexpected payload {other:?}"),
    }
    match (seen[6].payload.as_ref().unwrap(), seen[8].payload.as_ref().unwrap()) {
        (Payload::ProjectMemberRemoved(left), Payload::ProjectMemberRemoved(removed)) => {
            assert!(left.left);
            assert_eq!((left.user_id.as_str(), left.role.as_str()), (b.as_str(), "admin"));
            assert!(!removed.left);
            assert_eq!(removed.user_id, carol.id.to_string());
        }
        other => panic!("unexpected payloads {other:?}"),
    }
    match seen[9].payload.as_ref().unwrap() {
        Payload::ProjectDeleted(deleted) => {
            assert_eq!(deleted.key, "EVT");
            assert_eq!(deleted.member_ids, std::slice::from_ref(&o));
        }
        other => panic!("unexpected payload {other:?}"),
    }

    stack.stop().await;
    amqp.close(0, "done".into()).await.unwrap();
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn check_access_is_served_from_the_cache_and_every_change_invalidates_it_at_once() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let _root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let bob = stack.user("bob@example.com").await;
    let project = stack.create(&owner, "CACHE").await;
    stack.add(&owner, &project.id, &bob, pb::ProjectRole::Member).await;
    // The change left a short lock that keeps readers off the cache; let it expire now.
    let mut redis =
        redis::Client::open(ordo_testkit::redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let lock = format!("{}access:{{{}}}:lock", env.redis_prefix(), project.id);
    assert_eq!(redis::cmd("DEL").arg(&lock).query_async::<i64>(&mut redis).await.unwrap(), 1);

    let first = stack.check(&bob, &project.id, &bob).await.unwrap();
    assert_eq!(first.role, pb::ProjectRole::Member as i32);
    assert_eq!((first.key.as_str(), first.archived, first.user_disabled), ("CACHE", false, false));

    // Behind the service's back: the cached answer is still served, so it comes from Redis.
    sqlx::query("UPDATE membership SET role = 'viewer' WHERE user_id = ?")
        .bind(bob.id)
        .execute(&stack.db)
        .await
        .unwrap();
    assert_eq!(stack.check(&bob, &project.id, &bob).await.unwrap().role, pb::ProjectRole::Member as i32);
    let entry: Option<String> = redis::cmd("GET")
        .arg(format!("{}access:{{{}}}:{}", env.redis_prefix(), project.id, bob.id))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(entry.unwrap().ends_with("p|0|member|0|CACHE"));

    // A change through the service is seen at once.
    stack
        .projects
        .update_member(as_user(
            &owner,
            pb::UpdateMemberRequest {
                project_id: project.id.clone(),
                user_id: bob.id.to_string(),
                role: pb::ProjectRole::Admin.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(stack.check(&bob, &project.id, &bob).await.unwrap().role, pb::ProjectRole::Admin as i32);
    stack
        .projects
        .archive_project(as_user(&owner, pb::ArchiveProjectRequest { id: project.id.clone(), ..Default::default() }))
        .await
        .unwrap();
    assert!(stack.check(&bob, &project.id, &bob).await.unwrap().archived);

    // Removed: refused on the very next request, and the owner sees a non-member.
    stack
        .projects
        .remove_member(as_user(
            &owner,
            pb::RemoveMemberRequest {
                project_id: project.id.clone(),
                user_id: bob.id.to_string(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(stack.check(&bob, &project.id, &bob).await.unwrap_err(), tonic::Code::NotFound);
    assert_eq!(stack.check(&owner, &project.id, &bob).await.unwrap().role, pb::ProjectRole::Unspecified as i32);

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn check_access_shows_nothing_to_strangers_and_names_bad_ids() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let stranger = stack.user("stranger@example.com").await;
    let project = stack.create(&owner, "HIDE").await;

    assert_eq!(stack.check(&stranger, &project.id, &stranger).await.unwrap_err(), tonic::Code::NotFound);
    assert_eq!(stack.check(&stranger, &project.id, &owner).await.unwrap_err(), tonic::Code::NotFound);
    let missing = Uuid::now_v7().to_string();
    assert_eq!(stack.check(&owner, &missing, &owner).await.unwrap_err(), tonic::Code::NotFound);
    // A global admin sees every project, as a non-member.
    let seen_by_root = stack.check(&root, &project.id, &root).await.unwrap();
    assert_eq!((seen_by_root.role, seen_by_root.key.as_str()), (pb::ProjectRole::Unspecified as i32, "HIDE"));
    assert_eq!(stack.check(&root, &project.id, &owner).await.unwrap().role, pb::ProjectRole::Owner as i32);

    let request = pb::CheckAccessRequest { project_id: "not-a-uuid".into(), user_id: "also-not".into() };
    let status = stack.projects.check_access(as_user(&owner, request)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let details = tonic_types::StatusExt::get_error_details(&status);
    let fields: Vec<String> = details.bad_request().unwrap().field_violations.iter().map(|v| v.field.clone()).collect();
    assert_eq!(fields, ["project_id", "user_id"]);

    // Without a token there is no caller.
    let request =
        tonic::Request::new(pb::CheckAccessRequest { project_id: project.id.clone(), user_id: owner.id.to_string() });
    assert_eq!(stack.projects.check_access(request).await.unwrap_err().code(), tonic::Code::Unauthenticated);

    stack.stop().await;
    env.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_disabled_account_keeps_its_membership_but_cannot_act_until_enabled() {
    let env = TestEnv::new();
    let mut stack = spawn(&env).await;
    let root = stack.user("root@example.com").await;
    let owner = stack.user("owner@example.com").await;
    let bob = stack.user("bob@example.com").await;
    let project = stack.create(&owner, "DIS").await;
    stack.add(&owner, &project.id, &bob, pb::ProjectRole::Member).await;
    assert_eq!(stack.check(&owner, &project.id, &bob).await.unwrap().role, pb::ProjectRole::Member as i32);

    let disable = |disabled: bool| {
        let mut request = tonic::Request::new(idpb::UpdateUserRequest {
            id: bob.id.to_string(),
            disabled: Some(disabled),
            ..Default::default()
        });
        request.metadata_mut().insert("authorization", format!("Bearer {}", root.token).parse().unwrap());
        request
    };
    stack.identity.update_user(disable(true)).await.unwrap();
    // identity.user_disabled travels identity's outbox, the exchange and this service's queue.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = stack.check(&owner, &project.id, &bob).await.unwrap();
        if answer.user_disabled {
            assert_eq!(answer.role, pb::ProjectRole::Unspecified as i32);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the disabling did not arrive");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let members = stack
        .projects
        .list_members(as_user(&owner, pb::ListMembersRequest { project_id: project.id.clone(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner()
        .members;
    let listed: Vec<(String, bool)> = members.iter().map(|m| (m.user_id.clone(), m.user_disabled)).collect();
    assert_eq!(listed, [(owner.id.to_string(), false), (bob.id.to_string(), true)]);

    stack.identity.update_user(disable(false)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = stack.check(&owner, &project.id, &bob).await.unwrap();
        if !answer.user_disabled {
            assert_eq!(answer.role, pb::ProjectRole::Member as i32);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the enabling did not arrive");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    stack.stop().await;
    env.cleanup().await.unwrap();
}
