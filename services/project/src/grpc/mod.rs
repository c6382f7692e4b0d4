//! The tonic server of `ordo.project.v1.ProjectService`: translates protobuf to use-case calls and
//! use-case errors to `tonic::Status`, nothing more.

use ordo_auth::caller;
use ordo_proto::project::v1 as pb;
use ordo_proto::time::timestamp;
use ordo_service::status;
use pb::project_service_server::ProjectService as ProjectRpc;
use tonic::{Request, Response, Status};

use crate::app::{ClientInfo, MemberView, ProjectService, ProjectUpdate};
use crate::domain::{Description, Membership, Project, ProjectRole};

/// The gRPC face of [`ProjectService`].
#[derive(Debug, Clone)]
pub struct ProjectGrpc {
    service: ProjectService,
}

impl ProjectGrpc {
    /// Serves `service`.
    pub fn new(service: ProjectService) -> Self {
        Self { service }
    }
}

fn client(info: Option<pb::ClientInfo>) -> ClientInfo {
    info.map(|c| ClientInfo { ip: c.ip, user_agent: c.user_agent }).unwrap_or_default()
}

fn role_to_proto(role: Option<ProjectRole>) -> pb::ProjectRole {
    match role {
        None => pb::ProjectRole::Unspecified,
        Some(ProjectRole::Viewer) => pb::ProjectRole::Viewer,
        Some(ProjectRole::Member) => pb::ProjectRole::Member,
        Some(ProjectRole::Admin) => pb::ProjectRole::Admin,
        Some(ProjectRole::Owner) => pb::ProjectRole::Owner,
    }
}

/// A role from a request; unspecified or unknown values are `None` (the use case says which field).
fn role_from_proto(value: i32) -> Option<ProjectRole> {
    match pb::ProjectRole::try_from(value) {
        Ok(pb::ProjectRole::Viewer) => Some(ProjectRole::Viewer),
        Ok(pb::ProjectRole::Member) => Some(ProjectRole::Member),
        Ok(pb::ProjectRole::Admin) => Some(ProjectRole::Admin),
        Ok(pb::ProjectRole::Owner) => Some(ProjectRole::Owner),
        Ok(pb::ProjectRole::Unspecified) | Err(_) => None,
    }
}

fn project(project: Project) -> pb::Project {
    pb::Project {
        id: project.id.to_string(),
        key: project.key.as_str().to_owned(),
        name: project.name.as_str().to_owned(),
        description: project.description.as_ref().map(Description::as_str).map(str::to_owned),
        archived: project.archived,
        created_by: project.created_by.to_string(),
        created_at: Some(timestamp(project.created_at)),
        updated_at: Some(timestamp(project.updated_at)),
        version: project.version,
    }
}

fn member(membership: Membership, user_disabled: bool) -> pb::Member {
    pb::Member {
        user_id: membership.user_id.to_string(),
        role: role_to_proto(Some(membership.role)).into(),
        added_at: Some(timestamp(membership.added_at)),
        version: membership.version,
        user_disabled,
    }
}

#[tonic::async_trait]
impl ProjectRpc for ProjectGrpc {
    async fn create_project(
        &self,
        request: Request<pb::CreateProjectRequest>,
    ) -> Result<Response<pb::CreateProjectResponse>, Status> {
        let caller = caller(&request)?.clone();
        let r = request.into_inner();
        let created = self
            .service
            .create_project(&caller, &r.name, &r.key, r.description.as_deref(), &client(r.client))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateProjectResponse { project: Some(project(created)) }))
    }

    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let caller = caller(&request)?.clone();
        let r = request.into_inner();
        let wanted = r.page.unwrap_or_default();
        let page =
            self.service.list_projects(&caller, r.archived, wanted.limit, &wanted.cursor).await.map_err(status)?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: page.projects.into_iter().map(project).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }

    async fn get_project(
        &self,
        request: Request<pb::GetProjectRequest>,
    ) -> Result<Response<pb::GetProjectResponse>, Status> {
        let found = self.service.get_project(caller(&request)?, &request.get_ref().id).await.map_err(status)?;
        Ok(Response::new(pb::GetProjectResponse { project: Some(project(found)) }))
    }

    async fn update_project(
        &self,
        request: Request<pb::UpdateProjectRequest>,
    ) -> Result<Response<pb::UpdateProjectResponse>, Status> {
        let caller = caller(&request)?.clone();
        let r = request.into_inner();
        let update = ProjectUpdate { name: r.name, description: r.description, expected_version: r.expected_version };
        let updated = self.service.update_project(&caller, &r.id, update, &client(r.client)).await.map_err(status)?;
        Ok(Response::new(pb::UpdateProjectResponse { project: Some(project(updated)) }))
    }

    async fn archive_project(
        &self,
        request: Request<pb::ArchiveProjectRequest>,
    ) -> Result<Response<pb::ArchiveProjectResponse>, Status> {
        let caller = caller(&request)?.clone();
        let r = request.into_inner();
        let archived = self
            .service
            .set_archived(&caller, &r.id, true, r.expected_version, &client(r.client))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ArchiveProjectResponse { project: Some(project(archived)) }))
    }

    async fn unarchive_project(
        &self,
        request: Request<pb::UnarchiveProjectRequest>,
    ) -> Result<Response<pb::UnarchiveProjectResponse>, Status> {
        let caller = caller(&request)?.clone();
        let r = request.into_inner();
        let active = self
            .service
            .set_archived(&caller, &r.id, false, r.expected_version, &client(r.client))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UnarchiveProjectResponse { project: Some(project(active)) }))
    }

    async fn delete_project(
        &self,
        request: Request<pb::DeleteProjectRequest>,
    ) -> Result<Response<pb::DeleteProjectResponse>, Status> {
        let caller = caller(&request)?.clone();
        let r = request.into_inner();
        self.service.delete_project(&caller, &r.id, r.expected_version, &client(r.client)).await.map_err(status)?;
        Ok(Response::new(pb::DeleteProjectResponse {}))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let caller = caller(&request)?.clone();
        let r = request.into_inner();
        let wanted = r.page.unwrap_or_default();
        let page =
            self.service.list_members(&caller, &r.project_id, wanted.limit, &wanted.cursor).await.map_err(status)?;
        Ok(Response::new(pb::ListMembersResponse {
            members: page
                .members
                .into_iter()
                .map(|MemberView { membership, user_disabled }| member(membership, user_disabled))
                .collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }

    async fn get_member(
        &self,
        request: Request<pb::GetMemberRequest>,
    ) -> Result<Response<pb::GetMemberResponse>, Status> {
        let r = request.get_ref();
        let found = self.service.get_member(caller(&request)?, &r.project_id, &r.user_id).await.map_err(status)?;
        Ok(Response::new(pb::GetMemberResponse { member: Some(member(found.membership, found.user_disabled)) }))
    }

    async fn add_member(
        &self,
        request: Request<pb::AddMemberRequest>,
    ) -> Result<Response<pb::AddMemberResponse>, Status> {
        let caller = caller(&request)?.clone();
        let authorization = ordo_auth::authorization(&request)?;
        let r = request.into_inner();
        let added = self
            .service
            .add_member(&caller, &authorization, &r.project_id, &r.user_id, role_from_proto(r.role), &client(r.client))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AddMemberResponse { member: Some(member(added.membership, added.user_disabled)) }))
    }

    async fn update_member(
        &self,
        request: Request<pb::UpdateMemberRequest>,
    ) -> Result<Response<pb::UpdateMemberResponse>, Status> {
        let caller = caller(&request)?.clone();
        let r = request.into_inner();
        let changed = self
            .service
            .update_member(
                &caller,
                &r.project_id,
                &r.user_id,
                role_from_proto(r.role),
                r.expected_version,
                &client(r.client),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateMemberResponse { member: Some(member(changed.membership, changed.user_disabled)) }))
    }

    async fn remove_member(
        &self,
        request: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::RemoveMemberResponse>, Status> {
        let caller = caller(&request)?.clone();
        let r = request.into_inner();
        self.service
            .remove_member(&caller, &r.project_id, &r.user_id, r.expected_version, &client(r.client))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RemoveMemberResponse {}))
    }

    async fn check_access(
        &self,
        request: Request<pb::CheckAccessRequest>,
    ) -> Result<Response<pb::CheckAccessResponse>, Status> {
        let r = request.get_ref();
        let answer = self.service.check_access(caller(&request)?, &r.project_id, &r.user_id).await.map_err(status)?;
        Ok(Response::new(pb::CheckAccessResponse {
            role: role_to_proto(answer.role).into(),
            archived: answer.archived,
            key: answer.key,
            user_disabled: answer.user_disabled,
        }))
    }
}
