//! The project service, asked whether the caller manages a project (`CheckAccess`).

use async_trait::async_trait;
use ordo_platform::grpc::TraceInterceptor;
use ordo_proto::project::v1::project_service_client::ProjectServiceClient;
use ordo_proto::project::v1::{CheckAccessRequest, ProjectRole};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::app::{AppError, ProjectRoles, Result};

/// A client of the project service that carries the current trace context.
pub type ProjectClient = ProjectServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// Project roles from the project service (served from its cache).
#[derive(Clone)]
pub struct ProjectServiceRoles {
    client: ProjectClient,
}

impl std::fmt::Debug for ProjectServiceRoles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectServiceRoles").finish_non_exhaustive()
    }
}

impl ProjectServiceRoles {
    /// Roles asked over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self { client: ProjectServiceClient::with_interceptor(channel, ordo_platform::grpc::propagate_trace as _) }
    }
}

#[async_trait]
impl ProjectRoles for ProjectServiceRoles {
    async fn manages(&self, authorization: &str, project_id: &str, user_id: &str) -> Result<bool> {
        let mut request =
            tonic::Request::new(CheckAccessRequest { project_id: project_id.to_owned(), user_id: user_id.to_owned() });
        let value = authorization
            .parse()
            .map_err(|_| AppError::Internal(anyhow::anyhow!("the caller's authorization is not valid metadata")))?;
        request.metadata_mut().insert("authorization", value);
        match self.client.clone().check_access(request).await {
            Ok(response) => {
                let role = response.into_inner().role;
                Ok(role == ProjectRole::Owner as i32 || role == ProjectRole::Admin as i32)
            }
            // Not a project the caller can see, or not a project id at all.
            Err(status) if matches!(status.code(), tonic::Code::NotFound | tonic::Code::InvalidArgument) => Ok(false),
            Err(status) if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) => {
                Err(AppError::Unavailable(format!("project: {}", status.message())))
            }
            Err(status) => {
                Err(AppError::Internal(anyhow::anyhow!("project answered {:?}: {}", status.code(), status.message())))
            }
        }
    }
}
