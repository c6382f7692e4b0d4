//! The task service over real gRPC, MariaDB, Redis and RabbitMQ, with a real identity service
//! issuing the tokens and a real project service answering `CheckAccess`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Ordering;
use std::collections::HashSet;

use ordo_proto::events::v1::Envelope;
use ordo_proto::events::v1::envelope::Payload;
use ordo_proto::identity::v1 as idpb;
use ordo_proto::project::v1 as ppb;
use ordo_proto::task::v1 as pb;
use ordo_testkit::TestEnv;
use prost::Message as _;
use sqlx::MySqlPool;
use tonic::Code;
use uuid::Uuid;

#[path = "../support/mod.rs"]
mod support;

mod attachments;
mod board;
mod comments;
mod events;
mod exports;
mod history;
mod imports;
mod lists;
mod reads;
mod roles;
mod search;
mod takeover;
mod tree;
mod writes;

use support::*;

/// `GET path` on an ops listener: the status line and the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

fn ids(tasks: &[pb::Task]) -> Vec<String> {
    tasks.iter().map(|t| t.id.clone()).collect()
}

fn seconds(t: &Option<prost_types::Timestamp>) -> Option<(i64, i32)> {
    t.as_ref().map(|t| (t.seconds, t.nanos))
}

/// The order a sort promises, computed here from the tasks themselves.
fn expected_order(mut tasks: Vec<pb::Task>, sort: pb::TaskSort) -> Vec<String> {
    use pb::TaskSort as S;
    let id = |t: &pb::Task| Uuid::parse_str(&t.id).unwrap();
    tasks.sort_by(|a, b| {
        let by_id = id(a).cmp(&id(b));
        let (ordering, descending) = match sort {
            S::CreatedAtAsc => (seconds(&a.created_at).cmp(&seconds(&b.created_at)), false),
            S::CreatedAtDesc | S::Unspecified => (seconds(&a.created_at).cmp(&seconds(&b.created_at)), true),
            S::UpdatedAtAsc => (seconds(&a.updated_at).cmp(&seconds(&b.updated_at)), false),
            S::UpdatedAtDesc => (seconds(&a.updated_at).cmp(&seconds(&b.updated_at)), true),
            S::PriorityAsc => (a.priority.cmp(&b.priority), false),
            S::PriorityDesc => (a.priority.cmp(&b.priority), true),
            S::PositionAsc => (a.position.as_bytes().cmp(b.position.as_bytes()), false),
            S::Relevance => panic!("a ranking by relevance is worked out by the search tests"),
            S::DueAtAsc | S::DueAtDesc => {
                let descending = sort == S::DueAtDesc;
                // Without a due date: last in both directions.
                match (seconds(&a.due_at), seconds(&b.due_at)) {
                    (None, None) => return if descending { by_id.reverse() } else { by_id },
                    (None, Some(_)) => return Ordering::Greater,
                    (Some(_), None) => return Ordering::Less,
                    (Some(x), Some(y)) => (x.cmp(&y), descending),
                }
            }
        };
        let ordering = ordering.then(by_id);
        if descending { ordering.reverse() } else { ordering }
    });
    ids(&tasks)
}
