//! The URL an endpoint's deliveries are posted to: absolute `http` or `https`, without credentials
//! or a fragment, at most [`MAX_URL_LEN`] bytes. An address written in the URL is checked against
//! what the deployment lets webhooks reach here; a name is checked each time it is resolved.

use std::net::IpAddr;

use url::{Host, Url};

use super::{MAX_URL_LEN, Reach};

/// A checked endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target(Url);

/// Why a URL cannot be an endpoint's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Longer than [`MAX_URL_LEN`] bytes.
    #[error("a webhook URL is at most {MAX_URL_LEN} bytes")]
    TooLong,
    /// Not an absolute `http` or `https` URL with a host.
    #[error("a webhook URL is an absolute http or https URL")]
    Invalid,
    /// It carries a user name or a password.
    #[error("a webhook URL carries no user name or password")]
    Credentials,
    /// It carries a fragment (`#...`), which is never sent.
    #[error("a webhook URL carries no fragment")]
    Fragment,
    /// Its address is one this deployment does not send webhooks to.
    #[error("this deployment does not send webhooks to that address")]
    Unreachable,
}

impl Target {
    /// Checks `text`; its length before parsing it.
    ///
    /// # Errors
    ///
    /// [`TargetError`] naming the first rule `text` breaks.
    pub fn parse(text: &str) -> Result<Self, TargetError> {
        if text.len() > MAX_URL_LEN {
            return Err(TargetError::TooLong);
        }
        let url = Url::parse(text).map_err(|_| TargetError::Invalid)?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(TargetError::Invalid);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Credentials);
        }
        if url.fragment().is_some() {
            return Err(TargetError::Fragment);
        }
        Ok(Self(url))
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The URL's text, normalised.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The address written in the URL, when it names one rather than a host name.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.0.host()? {
            Host::Ipv4(ip) => Some(ip.into()),
            Host::Ipv6(ip) => Some(ip.into()),
            Host::Domain(_) => None,
        }
    }

    /// Whether `reach` lets deliveries go to the URL as written: its address if it names one (a
    /// host name is checked where it is resolved, at every connection).
    ///
    /// # Errors
    ///
    /// [`TargetError::Unreachable`] for an address `reach` does not allow.
    pub fn check(&self, reach: Reach) -> Result<(), TargetError> {
        match self.ip() {
            Some(ip) if !reach.allows(ip) => Err(TargetError::Unreachable),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn http_and_https_urls_with_a_host_are_taken() {
        for url in ["https://hooks.example.com/ordo?x=1", "http://example.com:8080/", "https://[2001:4860::8888]/h"] {
            assert_eq!(Target::parse(url).unwrap().as_str(), url);
        }
    }

    #[test]
    fn other_urls_are_refused_with_the_rule_they_break() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));

        assert_eq!(Target::parse(&long), Err(TargetError::TooLong));
        assert_eq!(Target::parse("example.com/hook"), Err(TargetError::Invalid));
        assert_eq!(Target::parse("ftp://example.com/"), Err(TargetError::Invalid));
        assert_eq!(Target::parse("file:///etc/passwd"), Err(TargetError::Invalid));
        assert_eq!(Target::parse("https://user:pw@example.com/"), Err(TargetError::Credentials));
        assert_eq!(Target::parse("https://example.com/#part"), Err(TargetError::Fragment));
    }

    #[test]
    fn an_address_in_the_url_is_checked_and_a_name_is_left_to_resolution() {
        let loopback_only = Reach { loopback: true, private: false };
        let public_only = Reach::default();

        let literal = Target::parse("http://127.0.0.1:9000/hook").unwrap();
        let mapped = Target::parse("http://[::ffff:10.0.0.1]/hook").unwrap();
        let metadata = Target::parse("http://169.254.169.254/latest").unwrap();
        let name = Target::parse("http://localhost:9000/hook").unwrap();

        assert_eq!(literal.check(public_only), Err(TargetError::Unreachable));
        assert_eq!(literal.check(loopback_only), Ok(()));
        assert_eq!(mapped.check(loopback_only), Err(TargetError::Unreachable));
        assert_eq!(metadata.check(Reach { loopback: true, private: true }), Err(TargetError::Unreachable));
        assert_eq!((name.ip(), name.check(public_only)), (None, Ok(())));
    }
}
