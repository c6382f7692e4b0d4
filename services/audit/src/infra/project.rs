//! The project service, asked whether the caller manages a project (`CheckAccess`).

use async_trait::async_trait;
use ordo_service::projects::ProjectStandings;

use crate::app::{ProjectRoles, Result};

/// The caller manages a project when its standing there is owner or admin.
#[async_trait]
impl ProjectRoles for ProjectStandings {
    async fn manages(&self, authorization: &str, project_id: &str, user_id: &str) -> Result<bool> {
        // No standing: not a project the caller can see, or not a project id at all.
        Ok(self.standing(authorization, project_id, user_id).await?.is_some_and(|standing| standing.manages()))
    }
}
