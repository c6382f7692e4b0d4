//! `ListTasks` answered without decoding a cached page. The generated server encodes the message a
//! method returns, so a page the cache holds as bytes would have to be decoded only to be encoded
//! again. This route stands in front of it for that one method (an exact path wins over the
//! service's prefix in the router) and writes the stored bytes to the wire as they are: a
//! message's encoding is the concatenation of its fields' encodings, which is what the cache holds.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BufMut;
use ordo_proto::task::v1 as pb;
use prost::bytes::Buf;
use prost::encoding::{DecodeContext, WireType};
use tonic::server::UnaryService;
use tonic::{Request, Response, Status};

use super::TaskGrpc;
use crate::app::EncodedPage;

/// A `ListTasks` answer on the wire: a page read now, or the page cache's bytes of one.
#[derive(Debug, Default)]
struct PageAnswer(Option<EncodedPage<pb::ListTasksResponse>>);

impl prost::Message for PageAnswer {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match &self.0 {
            Some(EncodedPage::Fresh(response)) => response.encode_raw(buf),
            Some(EncodedPage::Stored(bytes)) => buf.put_slice(bytes),
            None => {}
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Only ever encoded by this server; a decoder skips what it does not know, as protobuf does.
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        match &self.0 {
            Some(EncodedPage::Fresh(response)) => response.encoded_len(),
            Some(EncodedPage::Stored(bytes)) => bytes.len(),
            None => 0,
        }
    }

    fn clear(&mut self) {
        self.0 = None;
    }
}

/// The method, with [`PageAnswer`] as its response.
struct ListTasksMethod(TaskGrpc);

impl UnaryService<pb::ListTasksRequest> for ListTasksMethod {
    type Response = PageAnswer;
    type Future = Pin<Box<dyn Future<Output = Result<Response<PageAnswer>, Status>> + Send>>;

    fn call(&mut self, request: Request<pb::ListTasksRequest>) -> Self::Future {
        let grpc = self.0.clone();
        Box::pin(async move { grpc.list_page(request).await.map(|page| Response::new(PageAnswer(Some(page)))) })
    }
}

/// The route of `ListTasks` in front of the generated server.
#[derive(Debug, Clone)]
pub struct ListTasksRoute(TaskGrpc);

impl ListTasksRoute {
    /// The path of the method this route answers.
    pub const PATH: &'static str = "/ordo.task.v1.TaskService/ListTasks";

    /// Answers `ListTasks` with `grpc`.
    pub fn new(grpc: TaskGrpc) -> Self {
        Self(grpc)
    }
}

impl tower::Service<http::Request<axum::body::Body>> for ListTasksRoute {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        let method = ListTasksMethod(self.0.clone());
        Box::pin(async move {
            let mut grpc =
                tonic::server::Grpc::new(tonic_prost::ProstCodec::<PageAnswer, pb::ListTasksRequest>::default());
            Ok(grpc.unary(method, request).await)
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    fn page() -> pb::ListTasksResponse {
        pb::ListTasksResponse {
            tasks: vec![pb::Task { id: "t1".into(), title: "Write it".into(), ..Default::default() }],
            next_cursor: "next".into(),
        }
    }

    #[test]
    fn stored_bytes_go_to_the_wire_as_the_page_they_encode() {
        let stored = page().encode_to_vec();
        let answer = PageAnswer(Some(EncodedPage::Stored(stored.clone())));
        assert_eq!(answer.encoded_len(), stored.len());
        assert_eq!(pb::ListTasksResponse::decode(answer.encode_to_vec().as_slice()), Ok(page()));
    }

    #[test]
    fn a_fresh_page_is_encoded_once_on_the_wire() {
        let answer = PageAnswer(Some(EncodedPage::Fresh(page())));
        assert_eq!(answer.encode_to_vec(), page().encode_to_vec());
    }
}
