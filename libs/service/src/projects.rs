//! The project service, asked for a user's standing in a project (`CheckAccess`) with the caller's
//! forwarded bearer token: it answers only about projects the caller can see.

use ordo_platform::grpc::TraceInterceptor;
use ordo_proto::project::v1::project_service_client::ProjectServiceClient;
use ordo_proto::project::v1::{CheckAccessRequest, ProjectRole};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// What the project service says of one user in one project the caller can see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The user's role; `None` for a non-member or a disabled account.
    pub role: Option<ProjectRole>,
    /// The project is archived.
    pub archived: bool,
    /// The project's key.
    pub key: String,
}

impl Standing {
    /// Whether the user manages the project: an owner or admin.
    pub fn manages(&self) -> bool {
        matches!(self.role, Some(ProjectRole::Owner | ProjectRole::Admin))
    }
}

/// Why the project service gave no standing.
#[derive(Debug, thiserror::Error)]
pub enum StandingError {
    /// The project service is down or did not answer in time.
    #[error("project: {0}")]
    Unavailable(String),
    /// Anything else: an unexpected answer, or an authorization that is not valid metadata.
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// The vocabulary's [`Unavailable`](ordo_error::Error::Unavailable) (the cause names the project
/// service) and [`Internal`](ordo_error::Error::Internal).
impl From<StandingError> for ordo_error::Error {
    fn from(error: StandingError) -> Self {
        match error {
            StandingError::Unavailable(_) => ordo_error::Error::Unavailable(error.to_string()),
            StandingError::Internal(cause) => ordo_error::Error::Internal(cause),
        }
    }
}

/// Standings from the project service (served from its cache), each call carrying the current trace
/// context.
#[derive(Clone)]
pub struct ProjectStandings {
    client: ProjectServiceClient<InterceptedService<Channel, TraceInterceptor>>,
}

impl std::fmt::Debug for ProjectStandings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectStandings").finish_non_exhaustive()
    }
}

impl ProjectStandings {
    /// Standings asked over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self { client: ProjectServiceClient::with_interceptor(channel, ordo_platform::grpc::propagate_trace as _) }
    }

    /// `user_id`'s standing in `project_id`, asked with the caller's `authorization` (its bearer
    /// credential); `None` when the project does not exist, the caller may not see it, or
    /// `project_id` is not a project id at all.
    ///
    /// # Errors
    ///
    /// [`StandingError::Unavailable`] when the project service is down or slow,
    /// [`StandingError::Internal`] for any other failure.
    pub async fn standing(
        &self,
        authorization: &str,
        project_id: &str,
        user_id: &str,
    ) -> Result<Option<Standing>, StandingError> {
        let mut request =
            tonic::Request::new(CheckAccessRequest { project_id: project_id.to_owned(), user_id: user_id.to_owned() });
        let value = authorization.parse().map_err(|_| {
            StandingError::Internal(anyhow::anyhow!("the caller's authorization is not valid metadata"))
        })?;
        request.metadata_mut().insert("authorization", value);
        match self.client.clone().check_access(request).await {
            Ok(response) => {
                let answer = response.into_inner();
                // A disabled account acts with no role, whatever its membership says.
                let role = match ProjectRole::try_from(answer.role) {
                    Ok(ProjectRole::Unspecified) | Err(_) => None,
                    Ok(_) if answer.user_disabled => None,
                    Ok(role) => Some(role),
                };
                Ok(Some(Standing { role, archived: answer.archived, key: answer.key }))
            }
            Err(status) if matches!(status.code(), tonic::Code::NotFound | tonic::Code::InvalidArgument) => Ok(None),
            Err(status) if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) => {
                Err(StandingError::Unavailable(status.message().to_owned()))
            }
            Err(status) => Err(StandingError::Internal(anyhow::anyhow!(
                "project answered {:?}: {}",
                status.code(),
                status.message()
            ))),
        }
    }
}
