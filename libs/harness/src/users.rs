//! Users for a test: registered and logged in through the identity service of a [`Stack`], and their
//! tokens put on requests.

use ordo_proto::identity::v1 as idpb;
use ordo_proto::identity::v1::identity_service_client::IdentityServiceClient;

use crate::{Service, Stack};

/// The password of every user [`Stack::sign_up`] registers.
pub const PASSWORD: &str = "correct horse battery staple";

/// A registered user with a fresh access token.
#[derive(Debug, Clone)]
pub struct User {
    /// The identity service's id of the user.
    pub id: String,
    /// An access token of a session of the user.
    pub access_token: String,
}

impl Stack {
    /// Registers `email` with identity (display name "Someone", password [`PASSWORD`]) and logs it in.
    /// Fails the test if identity refuses either.
    pub async fn sign_up(&self, email: &str) -> User {
        let mut identity = IdentityServiceClient::new(self.channel(Service::Identity));
        let register = idpb::RegisterRequest {
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
            display_name: "Someone".to_owned(),
            client: None,
        };
        let registered = identity.register(register).await.expect("register").into_inner();
        let login = idpb::LoginRequest { email: email.to_owned(), password: PASSWORD.to_owned(), client: None };
        let tokens = identity.login(login).await.expect("log in").into_inner().tokens.expect("tokens");
        User { id: registered.user.expect("the registered user").id, access_token: tokens.access_token }
    }
}

/// `message` as a request carrying `access_token` as its bearer token.
pub fn bearer<T>(access_token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {access_token}").parse().expect("a token is a valid header value");
    request.metadata_mut().insert("authorization", value);
    request
}
