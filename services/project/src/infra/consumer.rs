//! What the project service does with other contexts' events: an account identity disabled keeps
//! its memberships but cannot act, so `CheckAccess` must stop granting it anything at once.

use std::sync::Arc;

use async_trait::async_trait;
use ordo_events::{EventHandler, HandlerError};
use ordo_proto::events::v1::Envelope;
use ordo_proto::events::v1::envelope::Payload;
use sqlx::MySqlConnection;

use crate::app::ports::AccessCache;

/// The routing keys the project service consumes.
pub const BINDINGS: &[&str] = &["identity.user_disabled"];

/// Applies `identity.user_disabled` (which also announces re-enabling) to `user_status`, and drops
/// the cached access of every project the account is a member of, inside the consumer's transaction.
#[derive(Clone)]
pub struct IdentityEventHandler {
    cache: Arc<dyn AccessCache>,
}

impl std::fmt::Debug for IdentityEventHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityEventHandler").finish_non_exhaustive()
    }
}

impl IdentityEventHandler {
    /// A handler invalidating `cache`.
    pub fn new(cache: Arc<dyn AccessCache>) -> Self {
        Self { cache }
    }
}

#[async_trait]
impl EventHandler for IdentityEventHandler {
    async fn handle(&self, conn: &mut MySqlConnection, envelope: &Envelope) -> Result<(), HandlerError> {
        let Some(Payload::UserDisabled(event)) = &envelope.payload else {
            // Bound to nothing else; an event of another type here is ignored, not an error.
            tracing::debug!(r#type = %envelope.r#type, "ignoring an event this service does not use");
            return Ok(());
        };
        let user_id = ordo_events::uuid_field("user_id", &event.user_id)?;
        let as_of = ordo_events::occurred_at(envelope)?;
        if !super::mysql::set_user_status(conn, user_id, event.disabled, as_of).await? {
            tracing::debug!(%user_id, "an older account status; ignored");
            return Ok(());
        }
        let projects = super::mysql::projects_of(conn, user_id).await?;
        // Before the consumer commits, like every writer: see the cache's invalidation protocol.
        self.cache.invalidate(&projects).await.map_err(HandlerError::retryable)?;
        tracing::info!(%user_id, disabled = event.disabled, projects = projects.len(), "account status applied");
        Ok(())
    }
}
