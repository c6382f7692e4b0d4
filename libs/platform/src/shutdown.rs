//! Graceful shutdown: one [`CancellationToken`] per process, cancelled on SIGTERM or SIGINT. Servers
//! stop accepting, drain in-flight work, and consumers finish the message in hand.

pub use tokio_util::sync::CancellationToken;

/// The ticks of a background task that runs every so often until shutdown: the first at once, then
/// one per period, a late one delaying the next rather than bunching them up.
#[derive(Debug)]
pub struct Ticks(tokio::time::Interval);

impl Ticks {
    /// Ticks every `period`; a zero period is taken as a millisecond.
    pub fn every(period: std::time::Duration) -> Self {
        let mut interval = tokio::time::interval(period.max(std::time::Duration::from_millis(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self(interval)
    }

    /// Waits for the next tick: `true` then, `false` as soon as `shutdown` is cancelled.
    pub async fn next(&mut self, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => false,
            _ = self.0.tick() => true,
        }
    }
}

/// Returns a token that is cancelled when the process receives SIGTERM or SIGINT.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received; draining");
        trigger.cancel();
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[tokio::test]
    async fn ticks_come_at_once_then_every_period_and_stop_at_shutdown() {
        let shutdown = CancellationToken::new();
        let mut ticks = Ticks::every(Duration::from_millis(50));
        let started = Instant::now();

        assert!(ticks.next(&shutdown).await, "the first tick comes at once");
        assert!(started.elapsed() < Duration::from_millis(50));
        assert!(ticks.next(&shutdown).await);
        assert!(started.elapsed() >= Duration::from_millis(50), "the second waits a period");
        shutdown.cancel();
        assert!(!ticks.next(&shutdown).await, "no tick after shutdown");
    }
}
