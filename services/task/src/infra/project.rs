//! The project service, asked for a user's standing in a project (`CheckAccess`) with the caller's
//! forwarded bearer token: it answers only about projects the caller can see.

use async_trait::async_trait;
use ordo_proto::project::v1::ProjectRole as PbRole;
use ordo_service::projects::ProjectStandings;
use uuid::Uuid;

use crate::app::ports::{ProjectAccess, ProjectStanding};
use crate::app::{Caller, Result};
use crate::domain::ProjectRole;

fn role(value: PbRole) -> Option<ProjectRole> {
    match value {
        PbRole::Viewer => Some(ProjectRole::Viewer),
        PbRole::Member => Some(ProjectRole::Member),
        PbRole::Admin => Some(ProjectRole::Admin),
        PbRole::Owner => Some(ProjectRole::Owner),
        PbRole::Unspecified => None,
    }
}

/// Standings from the project service, in the task domain's roles.
#[async_trait]
impl ProjectAccess for ProjectStandings {
    async fn standing(&self, caller: &Caller, project_id: Uuid, user_id: Uuid) -> Result<Option<ProjectStanding>> {
        let standing =
            ProjectStandings::standing(self, &caller.authorization, &project_id.to_string(), &user_id.to_string())
                .await?;
        Ok(standing.map(|standing| ProjectStanding {
            role: standing.role.and_then(role),
            archived: standing.archived,
            key: standing.key,
        }))
    }
}
