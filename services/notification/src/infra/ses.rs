//! Mail through Amazon SES v2 (`aws-sdk-sesv2`), or a local stand-in such as moto. The SDK's own
//! retries are off: the sender decides what is tried again, from how a call failed.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_sesv2::error::{DisplayErrorContext, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use ordo_platform::aws::{AwsSettings, sdk_config};

use super::render::Templates;
use crate::app::ports::{Mail, Mailer, SendError};

/// How to reach SES and whom mail comes from.
#[derive(Debug, Clone)]
pub struct SesSettings {
    /// The endpoint, region and credentials.
    pub aws: AwsSettings,
    /// The sender, e.g. `Ordo <notifications@example.com>`.
    pub from: String,
    /// An SES configuration set (event publishing of bounces and complaints), if any.
    pub configuration_set: Option<String>,
}

/// [`Mailer`] on SES.
#[derive(Debug)]
pub struct SesMailer {
    client: Client,
    templates: Templates,
    from: String,
    configuration_set: Option<String>,
}

impl SesMailer {
    /// A mailer for `settings`; each call is bounded by `timeout`. Makes no request.
    ///
    /// # Errors
    ///
    /// A template that does not parse.
    pub async fn new(settings: &SesSettings, timeout: Duration) -> anyhow::Result<Self> {
        let shared = sdk_config(&settings.aws, timeout, timeout.max(Duration::from_secs(10))).await;
        let config = aws_sdk_sesv2::config::Builder::from(&shared).retry_config(RetryConfig::disabled()).build();
        Ok(Self {
            client: Client::from_conf(config),
            templates: Templates::new()?,
            from: settings.from.clone(),
            configuration_set: settings.configuration_set.clone(),
        })
    }

    /// Creates the sender's domain as an SES identity unless it exists. For a local stand-in only:
    /// in AWS the identity is provisioned (and verified through DNS) with the infrastructure.
    ///
    /// # Errors
    ///
    /// SES's answer when it is not "exists already".
    pub async fn ensure_sender_identity(&self) -> anyhow::Result<()> {
        let domain = self.from.rsplit_once('@').map(|(_, d)| d.trim_end_matches('>').trim()).unwrap_or_default();
        anyhow::ensure!(!domain.is_empty(), "the sender {:?} has no domain", self.from);
        match self.client.create_email_identity().email_identity(domain).send().await {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_already_exists_exception()) => Ok(()),
            Err(error) => Err(anyhow::anyhow!("creating the SES identity {domain}: {}", DisplayErrorContext(&error))),
        }
    }
}

fn content(data: String) -> Result<Content, SendError> {
    Content::builder().data(data).charset("UTF-8").build().map_err(|e| SendError::Rejected(e.to_string()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, to: &str, mail: &Mail) -> Result<String, SendError> {
        let rendered = self.templates.render(mail).map_err(|e| SendError::Rejected(format!("rendering: {e}")))?;
        let message = Message::builder()
            .subject(content(rendered.subject)?)
            .body(Body::builder().text(content(rendered.text)?).html(content(rendered.html)?).build())
            .build();
        let sent = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(classify)?;
        Ok(sent.message_id.unwrap_or_default())
    }
}

/// What a failed call means for the mail: whether SES could have accepted it.
fn classify(error: SdkError<SendEmailError, aws_sdk_sesv2::config::http::HttpResponse>) -> SendError {
    let text = DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let e = service.err();
            let not_now = e.is_too_many_requests_exception()
                || e.is_limit_exceeded_exception()
                || e.is_sending_paused_exception()
                || e.is_account_suspended_exception()
                || status == 429
                || status >= 500;
            if not_now { SendError::Retry(text) } else { SendError::Rejected(text) }
        }
        // Never reached SES: no connection was made.
        SdkError::DispatchFailure(failure) if never_connected(&error) || failure.is_user() => SendError::Retry(text),
        SdkError::ConstructionFailure(_) => SendError::Rejected(text),
        // A timeout, a connection lost mid-call, an answer that does not parse: SES may have taken it.
        _ => SendError::Unknown(text),
    }
}

/// Whether the call failed while connecting (refused, unreachable, a name that does not resolve),
/// before any byte of the request was sent.
fn never_connected(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(current) = source {
        if let Some(hyper) = current.downcast_ref::<hyper_util::client::legacy::Error>() {
            return hyper.is_connect();
        }
        source = current.source();
    }
    false
}
