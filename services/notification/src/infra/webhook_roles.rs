//! Who manages a project, as the project service answers when asked with the caller's credentials.

use async_trait::async_trait;
use ordo_service::projects::ProjectStandings;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::app::Result;
use crate::app::webhook_ports::{ProjectRoles, Standing};

/// [`ProjectRoles`] from the project service.
#[derive(Debug, Clone)]
pub struct ProjectServiceRoles {
    standings: ProjectStandings,
}

impl ProjectServiceRoles {
    /// Roles asked over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self { standings: ProjectStandings::new(channel) }
    }
}

#[async_trait]
impl ProjectRoles for ProjectServiceRoles {
    async fn standing(&self, authorization: &str, project_id: Uuid, user_id: Uuid) -> Result<Standing> {
        let standing = self.standings.standing(authorization, &project_id.to_string(), &user_id.to_string()).await?;
        Ok(match standing {
            None => Standing::Unseen,
            Some(standing) if standing.manages() => Standing::Manager,
            Some(_) => Standing::Member,
        })
    }
}
