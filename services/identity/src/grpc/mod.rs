//! The tonic server of `ordo.identity.v1.IdentityService`: translates protobuf to use-case calls and
//! use-case errors to `tonic::Status`, nothing more.

use ordo_auth::caller;
use ordo_proto::identity::v1 as pb;
use ordo_proto::time::timestamp;
use ordo_service::status;
use pb::identity_service_server::IdentityService as IdentityRpc;
use tonic::{Request, Response, Status};

use crate::app::{ClientInfo, IdentityService, UserUpdate, UserView};
use crate::domain::{Role, User};

/// The gRPC face of [`IdentityService`].
#[derive(Debug, Clone)]
pub struct IdentityGrpc {
    service: IdentityService,
}

impl IdentityGrpc {
    /// Serves `service`.
    pub fn new(service: IdentityService) -> Self {
        Self { service }
    }
}

fn client(info: Option<pb::ClientInfo>) -> ClientInfo {
    info.map(|c| ClientInfo { ip: c.ip, user_agent: c.user_agent }).unwrap_or_default()
}

fn role(role: Role) -> pb::Role {
    match role {
        Role::Admin => pb::Role::Admin,
        Role::Member => pb::Role::Member,
    }
}

fn user(user: User) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        email: user.email.as_str().to_owned(),
        display_name: user.display_name.as_str().to_owned(),
        role: role(user.role).into(),
        disabled: user.disabled,
        created_at: Some(timestamp(user.created_at)),
        updated_at: Some(timestamp(user.updated_at)),
        version: user.version,
    }
}

fn tokens(pair: crate::app::TokenPair) -> pb::TokenPair {
    pb::TokenPair {
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        token_type: "Bearer".to_owned(),
        expires_in: pair.expires_in,
        refresh_expires_in: pair.refresh_expires_in,
    }
}

#[tonic::async_trait]
impl IdentityRpc for IdentityGrpc {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let r = request.into_inner();
        let created =
            self.service.register(&r.email, &r.password, &r.display_name, &client(r.client)).await.map_err(status)?;
        Ok(Response::new(pb::RegisterResponse { user: Some(user(created)) }))
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        let r = request.into_inner();
        let pair = self.service.login(&r.email, &r.password, &client(r.client)).await.map_err(status)?;
        Ok(Response::new(pb::LoginResponse { tokens: Some(tokens(pair)) }))
    }

    async fn refresh_session(
        &self,
        request: Request<pb::RefreshSessionRequest>,
    ) -> Result<Response<pb::RefreshSessionResponse>, Status> {
        let r = request.into_inner();
        let pair = self.service.refresh(&r.refresh_token, &client(r.client)).await.map_err(status)?;
        Ok(Response::new(pb::RefreshSessionResponse { tokens: Some(tokens(pair)) }))
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Result<Response<pb::LogoutResponse>, Status> {
        let caller = caller(&request)?.clone();
        let r = request.into_inner();
        self.service.logout(&caller, &client(r.client)).await.map_err(status)?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn get_me(&self, request: Request<pb::GetMeRequest>) -> Result<Response<pb::GetMeResponse>, Status> {
        let me = self.service.me(caller(&request)?).await.map_err(status)?;
        Ok(Response::new(pb::GetMeResponse { user: Some(user(me)) }))
    }

    async fn update_me(&self, request: Request<pb::UpdateMeRequest>) -> Result<Response<pb::UpdateMeResponse>, Status> {
        let caller = caller(&request)?.clone();
        let r = request.into_inner();
        let me =
            self.service.update_me(&caller, r.display_name.as_deref(), r.expected_version).await.map_err(status)?;
        Ok(Response::new(pb::UpdateMeResponse { user: Some(user(me)) }))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let caller = caller(&request)?.clone();
        let r = request.into_inner();
        self.service
            .change_password(&caller, &r.current_password, &r.new_password, &client(r.client))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ChangePasswordResponse {}))
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Result<Response<pb::GetUserResponse>, Status> {
        let caller = caller(&request)?.clone();
        let view = self.service.get_user(&caller, &request.get_ref().id).await.map_err(status)?;
        let view = match view {
            UserView::Full(found) => pb::get_user_response::View::User(user(found)),
            UserView::Profile { id, display_name } => {
                pb::get_user_response::View::Profile(pb::PublicProfile { id: id.to_string(), display_name })
            }
        };
        Ok(Response::new(pb::GetUserResponse { view: Some(view) }))
    }

    async fn lookup_user_by_email(
        &self,
        request: Request<pb::LookupUserByEmailRequest>,
    ) -> Result<Response<pb::LookupUserByEmailResponse>, Status> {
        let caller = caller(&request)?.clone();
        let found = self.service.lookup_by_email(&caller, &request.get_ref().email).await.map_err(status)?;
        let user = found.map(|u| pb::UserContact {
            id: u.id.to_string(),
            display_name: u.display_name.as_str().to_owned(),
            email: u.email.as_str().to_owned(),
        });
        Ok(Response::new(pb::LookupUserByEmailResponse { user }))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let caller = caller(&request)?.clone();
        let r = request.into_inner();
        let wanted = r.page.unwrap_or_default();
        let limit = match wanted.limit {
            0 => 50,
            n => u32::try_from(n).unwrap_or(0),
        };
        let page = self.service.list_users(&caller, &r.query, limit, &wanted.cursor).await.map_err(status)?;
        Ok(Response::new(pb::ListUsersResponse {
            users: page.users.into_iter().map(user).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        let caller = caller(&request)?.clone();
        let r = request.into_inner();
        let new_role = match pb::Role::try_from(r.role) {
            Ok(pb::Role::Unspecified) => None,
            Ok(pb::Role::Admin) => Some(Role::Admin),
            Ok(pb::Role::Member) => Some(Role::Member),
            Err(_) => return Err(ordo_platform::grpc::invalid_fields([("role", "must be admin or member")])),
        };
        let update = UserUpdate { role: new_role, disabled: r.disabled, expected_version: r.expected_version };
        let updated = self.service.update_user(&caller, &r.id, update, &client(r.client)).await.map_err(status)?;
        Ok(Response::new(pb::UpdateUserResponse { user: Some(user(updated)) }))
    }

    async fn check_session(
        &self,
        request: Request<pb::CheckSessionRequest>,
    ) -> Result<Response<pb::CheckSessionResponse>, Status> {
        let active = self.service.check_session(&request.get_ref().session_id).await.map_err(status)?;
        Ok(Response::new(pb::CheckSessionResponse { active }))
    }

    async fn get_jwks(&self, _request: Request<pb::GetJwksRequest>) -> Result<Response<pb::GetJwksResponse>, Status> {
        let jwks_json = self.service.jwks_json().map_err(status)?;
        Ok(Response::new(pb::GetJwksResponse { jwks_json }))
    }
}
