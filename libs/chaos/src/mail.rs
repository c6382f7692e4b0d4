//! Mail to the assignee, counted at both ends: the notification service's `email` rows by state, and
//! the messages the local SES stand-in took. A mail sent twice shows as more messages than sent rows;
//! a row whose sender died mid-send (`unknown`) may or may not have gone out, and is never sent again.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::scene::Scene;
use crate::stack::Service;

/// How long open mail windows and retries may take to end once the load stops.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Both counts.
#[derive(Debug, Default)]
pub(crate) struct MailSummary {
    /// Messages to the assignee the SES stand-in took.
    pub(crate) taken: usize,
    /// The assignee's `email` rows per state.
    pub(crate) by_state: BTreeMap<String, i64>,
}

impl MailSummary {
    fn state(&self, state: &str) -> usize {
        usize::try_from(self.by_state.get(state).copied().unwrap_or(0)).unwrap_or(0)
    }

    /// Every sent mail went out once: no fewer messages than sent rows, and no more than those and
    /// the rows that may have gone (`unknown`, and `sending` whose sender was killed mid-send: its
    /// claim's expiry, minutes later, marks it `unknown`; neither is ever sent again).
    pub(crate) fn ok(&self) -> bool {
        let sent = self.state("sent");
        sent > 0 && self.taken >= sent && self.taken <= sent + self.state("unknown") + self.state("sending")
    }
}

impl fmt::Display for MailSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mail to the assignee: {} messages taken by the SES stand-in; email rows by state: {:?}",
            self.taken, self.by_state
        )
    }
}

/// Waits until no mail of the assignee is still open or waiting for a retry, then counts.
pub(crate) async fn check(scene: &Scene) -> anyhow::Result<MailSummary> {
    let pool = scene.stack.pool(Service::Notification);
    let started = Instant::now();
    let by_state = loop {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT CAST(state AS CHAR), COUNT(*) FROM email WHERE user_id = UNHEX(REPLACE(?, '-', '')) GROUP BY state",
        )
        .bind(&scene.shared.assignee)
        .fetch_all(pool)
        .await?;
        let by_state: BTreeMap<String, i64> = rows.into_iter().collect();
        let pending = ["open", "retry"].iter().any(|state| by_state.contains_key(*state));
        if !pending || started.elapsed() > SETTLE_TIMEOUT {
            break by_state;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let taken = ordo_testkit::sent_mails(&scene.assignee_email).await?.len();
    Ok(MailSummary { taken, by_state })
}
