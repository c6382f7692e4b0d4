//! The rules of outgoing webhooks: which events an endpoint asked for, which addresses it may be
//! called at, how a delivery is signed ([`signing`]), what an answer means, and when a failed
//! delivery is tried again. Plain Rust: the caller resolves names, sends requests and draws the
//! random jitter and secrets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

mod endpoint;
mod signing;
mod target;

pub use endpoint::{
    DescriptionError, DisableReason, MAX_DESCRIPTION_CHARS, MAX_ENDPOINTS_PER_PROJECT, MAX_RATE_LIMIT,
    ORDER_HOLD_ATTEMPTS, Outcome, description, disable_reason,
};
pub use signing::{SECRET_BYTES, Secret, SecretError, SignError, Signing};
pub use target::{Target, TargetError};

/// The most event types (or patterns) one endpoint subscribes to.
pub const MAX_EVENT_TYPES: usize = 50;
/// The longest event type or pattern, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 100;
/// The longest endpoint URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// How long a receiver has to answer before the attempt counts as a timeout.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an endpoint may fail without one success before it is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);
/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// The waits between attempts (Svix's schedule): the second attempt 5 s after the first, the third
/// 5 min after the second, and so on; after the last a delivery has failed.
const SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// The most attempts one delivery gets.
pub const MAX_ATTEMPTS: u32 = SCHEDULE.len() as u32 + 1;

/// The shortest wait after a `429` or a timeout: the receiver is overloaded.
const OVERLOADED_WAIT: Duration = Duration::from_secs(60);
/// The longest `Retry-After` honoured; a longer one waits this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 3600);

/// Why an endpoint's event types were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventTypesError {
    #[error("at least one event type is required")]
    Empty,
    #[error("at most {MAX_EVENT_TYPES} event types")]
    TooMany,
    #[error(
        "`{0}` is not an event type: lowercase dotted names such as `task.created`, or a prefix and `*` such as `task.*`"
    )]
    Invalid(String),
}

/// The event types an endpoint receives: exact names (`task.created`) and prefixes (`task.*`, or
/// `*` for every event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypes(Vec<String>);

impl EventTypes {
    /// Checks `types`: at least one, at most [`MAX_EVENT_TYPES`], each a dotted lowercase name or a
    /// prefix ending in `.*` (or `*` alone). Duplicates collapse; the order is kept.
    pub fn parse(types: &[String]) -> Result<Self, EventTypesError> {
        if types.is_empty() {
            return Err(EventTypesError::Empty);
        }
        if types.len() > MAX_EVENT_TYPES {
            return Err(EventTypesError::TooMany);
        }
        let mut kept: Vec<String> = Vec::with_capacity(types.len());
        for raw in types {
            if !valid_pattern(raw) {
                return Err(EventTypesError::Invalid(raw.chars().take(MAX_EVENT_TYPE_LEN).collect()));
            }
            if !kept.contains(raw) {
                kept.push(raw.clone());
            }
        }
        Ok(Self(kept))
    }

    /// The types as given (checked).
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether an event of type `event_type` goes to this endpoint.
    pub fn matches(&self, event_type: &str) -> bool {
        self.0.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => event_type.starts_with(prefix) && event_type.len() > prefix.len(),
            None => pattern == event_type,
        })
    }
}

/// `a.b.c`, `a.*` or `*`: segments of lowercase ASCII letters, digits and `_`.
fn valid_pattern(raw: &str) -> bool {
    if raw == "*" {
        return true;
    }
    if raw.is_empty() || raw.len() > MAX_EVENT_TYPE_LEN {
        return false;
    }
    let name = raw.strip_suffix(".*").unwrap_or(raw);
    name.split('.').all(|segment| {
        !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// What kind of network an address belongs to, for deciding whether a webhook may be sent there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The public internet.
    Public,
    /// This host (`127.0.0.0/8`, `::1`).
    Loopback,
    /// A private network: RFC 1918, shared address space (`100.64.0.0/10`), unique local IPv6.
    Private,
    /// Link-local (`169.254.0.0/16`, `fe80::/10`), where cloud metadata services answer.
    LinkLocal,
    /// Anything else that is not a unicast host on the internet: unspecified, multicast, broadcast,
    /// documentation, benchmarking, reserved, and tunnelling prefixes whose far end is not known.
    Special,
}

impl Network {
    /// The network of `ip`. An IPv4 address carried in IPv6 (mapped, NAT64, 6to4) counts as the IPv4
    /// address it carries.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => Self::of_v6(v6),
        }
    }

    fn of_v4(ip: Ipv4Addr) -> Self {
        let [a, b, c, _] = ip.octets();
        match (a, b, c) {
            (127, ..) => Self::Loopback,
            (10, ..) | (172, 16..=31, _) | (192, 168, _) | (100, 64..=127, _) => Self::Private,
            (169, 254, _) => Self::LinkLocal,
            (0, ..)                                   // "this network"
            | (192, 0, 0 | 2)                         // protocol assignments, TEST-NET-1
            | (192, 88, 99)                           // 6to4 relay anycast
            | (198, 18..=19, _)                       // benchmarking
            | (198, 51, 100) | (203, 0, 113)          // TEST-NET-2 and -3
            | (224..=255, ..) => Self::Special,       // multicast, reserved, broadcast
            _ => Self::Public,
        }
    }

    fn of_v6(ip: Ipv6Addr) -> Self {
        if let Some(v4) = ip.to_ipv4_mapped() {
            return Self::of_v4(v4);
        }
        let s = ip.segments();
        let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        if ip == Ipv6Addr::LOCALHOST {
            Self::Loopback
        } else if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
            // NAT64 (64:ff9b::/96): the IPv4 address it reaches.
            Self::of_v4(embedded(s[6], s[7]))
        } else if s[0] == 0x2002 {
            // 6to4 (2002::/16): the IPv4 address of the far end.
            Self::of_v4(embedded(s[1], s[2]))
        } else if s[0] & 0xfe00 == 0xfc00 {
            Self::Private // unique local fc00::/7
        } else if s[0] & 0xffc0 == 0xfe80 {
            Self::LinkLocal // fe80::/10
        } else if s[0] & 0xe000 != 0x2000 // outside global unicast 2000::/3: unspecified, IPv4-compatible, multicast, site-local...
            || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments 2001::/23 (Teredo among them)
            || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
            || (s[0] == 0x3fff && s[1] < 0x1000)
        // documentation 3fff::/20
        {
            Self::Special
        } else {
            Self::Public
        }
    }
}

/// Which networks a deployment lets webhooks reach beside the public internet. Link-local and
/// special addresses are never reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reach {
    /// This host (tests, a receiver beside the service).
    pub loopback: bool,
    /// Private networks (a receiver inside the deployment's own network).
    pub private: bool,
}

impl Reach {
    /// Whether a webhook may be sent to `ip`.
    pub fn allows(self, ip: IpAddr) -> bool {
        match Network::of(ip) {
            Network::Public => true,
            Network::Loopback => self.loopback,
            Network::Private => self.private,
            Network::LinkLocal | Network::Special => false,
        }
    }
}

/// How a receiver answered one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP status, with the `Retry-After` it gave if any.
    Status { code: u16, retry_after: Option<Duration> },
    /// No answer within [`DELIVERY_TIMEOUT`].
    Timeout,
    /// No connection, a refused address, a broken response.
    Unreachable,
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The answer, as the retry rules read it.
    pub answer: Answer,
    /// From sending the request to the answer's head (or to the failure).
    pub latency: Duration,
    /// The start of the answer's body (UTF-8, lossy), or what went wrong when there was no answer.
    pub excerpt: String,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered.
    Delivered,
    /// Try again after the wait.
    Retry(Duration),
    /// The delivery has failed for good (out of attempts).
    Failed,
    /// The receiver is gone (`410`): the delivery fails and the endpoint is disabled.
    Gone,
}

/// What follows attempt number `attempt` (1 for the first) answered `answer`. `jitter` is a random
/// number from -1 to 1, which moves the scheduled wait by up to 20 %.
pub fn verdict(attempt: u32, answer: Answer, jitter: f64) -> Verdict {
    let floor = match answer {
        Answer::Status { code: 200..=299, .. } => return Verdict::Delivered,
        Answer::Status { code: 410, .. } => return Verdict::Gone,
        Answer::Status { code: 429, retry_after, .. } => retry_after.unwrap_or_default().max(OVERLOADED_WAIT),
        Answer::Status { retry_after, .. } => retry_after.unwrap_or_default(),
        Answer::Timeout => OVERLOADED_WAIT,
        Answer::Unreachable => Duration::ZERO,
    };
    let Some(scheduled) = attempt.checked_sub(1).and_then(|i| SCHEDULE.get(i as usize)) else {
        return Verdict::Failed;
    };
    let factor = 1.0 + 0.2 * jitter.clamp(-1.0, 1.0);
    Verdict::Retry(scheduled.mul_f64(factor).max(floor.min(MAX_RETRY_AFTER)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn types(raw: &[&str]) -> Result<EventTypes, EventTypesError> {
        EventTypes::parse(&raw.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn patterns_match_names_and_prefixes() {
        let t = types(&["task.*", "project.member_added"]).unwrap();
        assert!(t.matches("task.created"));
        assert!(t.matches("task.comment.added"));
        assert!(t.matches("project.member_added"));
        assert!(!t.matches("project.created"));
        assert!(!t.matches("task"));
        assert!(!t.matches("tasks.created"));
        assert!(types(&["*"]).unwrap().matches("identity.user.registered"));
        assert!(!types(&["task.created"]).unwrap().matches("task.created.extra"));
    }

    #[test]
    fn bad_event_types_are_refused() {
        assert_eq!(types(&[]), Err(EventTypesError::Empty));
        for bad in ["", "Task.created", "task..created", "task.", ".task", "task*", "task.*.x", "tâche", "task created"]
        {
            assert!(matches!(types(&[bad]), Err(EventTypesError::Invalid(_))), "{bad:?} was taken");
        }
        let many: Vec<String> = (0..=MAX_EVENT_TYPES).map(|i| format!("task.t{i}")).collect();
        assert_eq!(EventTypes::parse(&many), Err(EventTypesError::TooMany));
        assert_eq!(types(&["task.*", "task.*"]).unwrap().as_slice(), ["task.*"]);
    }

    fn net(raw: &str) -> Network {
        Network::of(raw.parse().unwrap())
    }

    #[test]
    fn addresses_are_classified() {
        for public in ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"] {
            assert_eq!(net(public), Network::Public, "{public}");
        }
        for loopback in ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1"] {
            assert_eq!(net(loopback), Network::Loopback, "{loopback}");
        }
        for private in
            ["10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1", "fd00::1", "::ffff:10.0.0.1"]
        {
            assert_eq!(net(private), Network::Private, "{private}");
        }
        for link_local in ["169.254.169.254", "fe80::1", "::ffff:169.254.169.254", "2002:a9fe:a9fe::1"] {
            assert_eq!(net(link_local), Network::LinkLocal, "{link_local}");
        }
        for special in [
            "0.0.0.0",
            "0.1.2.3",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::127.0.0.1",
            "ff02::1",
            "fec0::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
        ] {
            assert_eq!(net(special), Network::Special, "{special}");
        }
        // Neighbours of the ranges stay public.
        for public in ["172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1", "198.17.255.255", "2001:200::1"]
        {
            assert_eq!(net(public), Network::Public, "{public}");
        }
    }

    #[test]
    fn reach_allows_what_the_deployment_allows_and_never_link_local() {
        let ip = |raw: &str| raw.parse::<IpAddr>().unwrap();
        let closed = Reach::default();
        assert!(closed.allows(ip("8.8.8.8")));
        assert!(!closed.allows(ip("127.0.0.1")));
        assert!(!closed.allows(ip("10.0.0.1")));
        let tests = Reach { loopback: true, private: false };
        assert!(tests.allows(ip("127.0.0.1")) && tests.allows(ip("::1")));
        assert!(!tests.allows(ip("192.168.0.1")));
        let open = Reach { loopback: true, private: true };
        assert!(open.allows(ip("192.168.0.1")));
        assert!(!open.allows(ip("169.254.169.254")));
        assert!(!open.allows(ip("0.0.0.0")));
    }

    fn status(code: u16) -> Answer {
        Answer::Status { code, retry_after: None }
    }

    #[test]
    fn the_schedule_follows_svix_and_ends() {
        assert_eq!(verdict(1, status(204), 0.0), Verdict::Delivered);
        assert_eq!(verdict(1, status(500), 0.0), Verdict::Retry(Duration::from_secs(5)));
        assert_eq!(verdict(2, status(302), 0.0), Verdict::Retry(Duration::from_secs(300)));
        assert_eq!(verdict(3, Answer::Unreachable, 0.0), Verdict::Retry(Duration::from_secs(1800)));
        assert_eq!(verdict(7, status(503), 0.0), Verdict::Retry(Duration::from_secs(36_000)));
        assert_eq!(verdict(MAX_ATTEMPTS, status(500), 0.0), Verdict::Failed);
        assert_eq!(verdict(1, status(410), 0.0), Verdict::Gone);
        assert_eq!(verdict(1, status(500), 1.0), Verdict::Retry(Duration::from_secs(6)));
        assert_eq!(verdict(1, status(500), -1.0), Verdict::Retry(Duration::from_secs(4)));
        assert_eq!(verdict(1, status(500), 7.0), Verdict::Retry(Duration::from_secs(6)));
    }

    #[test]
    fn overload_waits_at_least_a_minute_and_retry_after_is_bounded() {
        assert_eq!(verdict(1, status(429), 0.0), Verdict::Retry(Duration::from_secs(60)));
        assert_eq!(verdict(1, Answer::Timeout, 0.0), Verdict::Retry(Duration::from_secs(60)));
        let after = |secs| Answer::Status { code: 503, retry_after: Some(Duration::from_secs(secs)) };
        assert_eq!(verdict(1, after(120), 0.0), Verdict::Retry(Duration::from_secs(120)));
        assert_eq!(verdict(1, after(1), 0.0), Verdict::Retry(Duration::from_secs(5)));
        assert_eq!(verdict(1, after(10_000_000), 0.0), Verdict::Retry(MAX_RETRY_AFTER));
        assert_eq!(verdict(MAX_ATTEMPTS, after(120), 0.0), Verdict::Failed);
    }
}
