//! [`SessionCheck`] by the session check every service's authentication uses (identity's marker in
//! Redis, else identity's `CheckSession`).

use async_trait::async_trait;
use ordo_auth::session::{Liveness, Sessions};
use uuid::Uuid;

use crate::app::ports::SessionCheck;
use crate::app::{AppError, Result};

/// Sessions as identity tells them.
#[derive(Debug, Clone)]
pub struct IdentitySessions(Sessions);

impl IdentitySessions {
    /// Asks `sessions`.
    pub fn new(sessions: Sessions) -> Self {
        Self(sessions)
    }
}

#[async_trait]
impl SessionCheck for IdentitySessions {
    async fn is_live(&self, session_id: Uuid) -> Result<bool> {
        match self.0.check(session_id).await {
            Ok(Liveness::Live) => Ok(true),
            Ok(Liveness::Revoked) => Ok(false),
            Err(error) => Err(AppError::Unavailable(format!("session check: {error}"))),
        }
    }
}
