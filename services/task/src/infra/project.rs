//! The project service, asked for a user's standing in a project (`CheckAccess`) with the caller's
//! forwarded bearer token: it answers only about projects the caller can see.

use async_trait::async_trait;
use ordo_platform::grpc::TraceInterceptor;
use ordo_proto::project::v1::project_service_client::ProjectServiceClient;
use ordo_proto::project::v1::{CheckAccessRequest, ProjectRole as PbRole};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::app::ports::{ProjectAccess, ProjectStanding};
use crate::app::{AppError, Caller, Result};
use crate::domain::ProjectRole;

/// A client of the project service that carries the current trace context.
pub type ProjectClient = ProjectServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// Standings from the project service (served from its Redis cache).
#[derive(Clone)]
pub struct ProjectServiceAccess {
    client: ProjectClient,
}

impl std::fmt::Debug for ProjectServiceAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectServiceAccess").finish_non_exhaustive()
    }
}

impl ProjectServiceAccess {
    /// Standings asked over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self { client: ProjectServiceClient::with_interceptor(channel, ordo_platform::grpc::propagate_trace as _) }
    }
}

fn role(value: i32) -> Option<ProjectRole> {
    match PbRole::try_from(value) {
        Ok(PbRole::Viewer) => Some(ProjectRole::Viewer),
        Ok(PbRole::Member) => Some(ProjectRole::Member),
        Ok(PbRole::Admin) => Some(ProjectRole::Admin),
        Ok(PbRole::Owner) => Some(ProjectRole::Owner),
        Ok(PbRole::Unspecified) | Err(_) => None,
    }
}

#[async_trait]
impl ProjectAccess for ProjectServiceAccess {
    async fn standing(&self, caller: &Caller, project_id: Uuid, user_id: Uuid) -> Result<Option<ProjectStanding>> {
        let mut request = tonic::Request::new(CheckAccessRequest {
            project_id: project_id.to_string(),
            user_id: user_id.to_string(),
        });
        let value = caller
            .authorization
            .parse()
            .map_err(|_| AppError::Internal(anyhow::anyhow!("the caller's authorization is not valid metadata")))?;
        request.metadata_mut().insert("authorization", value);
        match self.client.clone().check_access(request).await {
            Ok(response) => {
                let answer = response.into_inner();
                // A disabled account acts with no role, whatever its membership says.
                let role = if answer.user_disabled { None } else { role(answer.role) };
                Ok(Some(ProjectStanding { role, archived: answer.archived, key: answer.key }))
            }
            // Not a project the caller can see.
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) => {
                Err(AppError::Unavailable(format!("project: {}", status.message())))
            }
            Err(status) => {
                Err(AppError::Internal(anyhow::anyhow!("project answered {:?}: {}", status.code(), status.message())))
            }
        }
    }
}
