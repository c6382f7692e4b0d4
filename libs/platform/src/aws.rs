//! The AWS SDK configuration Ordo's clients (S3 for attachments, SES for email) share: an endpoint
//! for a local stand-in (moto, MinIO) or AWS itself, the region, static credentials or the default
//! chain (environment, ECS task role), and the timeouts of each call.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

use crate::Secret;

/// Where an AWS API is reached and as whom.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// A compatible endpoint such as `http://127.0.0.1:9000`; `None` for AWS itself.
    pub endpoint: Option<String>,
    /// The region.
    pub region: String,
    /// Static credentials (access key id, secret); `None` uses the AWS default chain.
    pub credentials: Option<(String, Secret<String>)>,
}

impl AwsSettings {
    /// Settings from flags: an empty `endpoint` means AWS itself; credentials only when both parts
    /// are given.
    pub fn new(
        endpoint: &str,
        region: &str,
        access_key_id: Option<&String>,
        secret_access_key: Option<&Secret<String>>,
    ) -> Self {
        Self {
            endpoint: Some(endpoint.trim()).filter(|e| !e.is_empty()).map(str::to_owned),
            region: region.to_owned(),
            credentials: access_key_id.zip(secret_access_key).map(|(id, secret)| (id.clone(), secret.clone())),
        }
    }
}

/// The SDK configuration for `settings`: a connection attempt is bounded by `connect`, and one
/// attempt of a call by `attempt`. Makes no request (the default chain resolves credentials lazily).
pub async fn sdk_config(settings: &AwsSettings, connect: Duration, attempt: Duration) -> SdkConfig {
    let timeouts = TimeoutConfig::builder().connect_timeout(connect).operation_attempt_timeout(attempt).build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .timeout_config(timeouts);
    if let Some((id, secret)) = &settings.credentials {
        loader = loader.credentials_provider(Credentials::new(id, secret.expose(), None, None, "ordo-config"));
    }
    if let Some(endpoint) = &settings.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}
