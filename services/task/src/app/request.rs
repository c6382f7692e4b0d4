//! What every request brings to a use case: who calls ([`Caller`]) and from where ([`ClientInfo`]).

use uuid::Uuid;

/// Where a request came from, as the gateway saw it; recorded in the events it causes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's IP address.
    pub ip: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
}

/// The authenticated caller, with the bearer credential the project service is asked with.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user id.
    pub user_id: Uuid,
    /// `Bearer <token>`, as it came.
    pub authorization: String,
}
