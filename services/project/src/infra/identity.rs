//! The identity service as this service sees it: the directory of accounts (does this user exist?).
//! The keys that verify access tokens come from [`ordo_auth::remote`].

use async_trait::async_trait;
use ordo_auth::remote::IdentityClient;
use ordo_proto::identity::v1::GetUserRequest;
use uuid::Uuid;

use crate::app::ports::UserDirectory;
use crate::app::{AppError, Result};

fn backend(status: &tonic::Status) -> AppError {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            AppError::Unavailable(format!("identity: {}", status.message()))
        }
        _ => AppError::Internal(anyhow::anyhow!("identity answered {:?}: {}", status.code(), status.message())),
    }
}

/// The accounts identity knows, asked over gRPC on behalf of the caller.
#[derive(Clone)]
pub struct IdentityDirectory {
    client: IdentityClient,
}

impl std::fmt::Debug for IdentityDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityDirectory").finish_non_exhaustive()
    }
}

impl IdentityDirectory {
    /// A directory over `client`.
    pub fn new(client: IdentityClient) -> Self {
        Self { client }
    }
}

#[async_trait]
impl UserDirectory for IdentityDirectory {
    #[tracing::instrument(level = "debug", skip(self, authorization))]
    async fn user_exists(&self, authorization: &str, user_id: Uuid) -> Result<bool> {
        let mut request = tonic::Request::new(GetUserRequest { id: user_id.to_string() });
        let value = authorization
            .parse()
            .map_err(|_| AppError::Internal(anyhow::anyhow!("the caller's authorization is not valid metadata")))?;
        request.metadata_mut().insert("authorization", value);
        match self.client.clone().get_user(request).await {
            Ok(_) => Ok(true),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(false),
            Err(status) => Err(backend(&status)),
        }
    }
}
