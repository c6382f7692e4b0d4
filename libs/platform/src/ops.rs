//! The operations HTTP server every process runs beside its main port: `/healthz` (the process runs),
//! `/readyz` (every backend it needs answers; `503` naming the failing ones otherwise) and `/metrics`
//! (Prometheus text format).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// How long one readiness check may take before it counts as failed. The checks run at once, so
/// `/readyz` answers within this whatever hangs behind it (probes time out after about a second).
pub const CHECK_TIMEOUT: Duration = Duration::from_millis(800);

/// One backend a process needs in order to serve.
pub trait ReadinessCheck: Send + Sync + 'static {
    /// The backend's name, as shown by `/readyz`.
    fn name(&self) -> &str;
    /// Resolves to `Ok` when the backend answers.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// The set of checks `/readyz` runs.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.checks.iter().map(|c| c.name())).finish()
    }
}

impl Readiness {
    /// Adds a check.
    pub fn with(mut self, check: impl ReadinessCheck) -> Self {
        self.checks.push(Arc::new(check));
        self
    }

    /// Runs every check at once, each bounded by [`CHECK_TIMEOUT`], and returns the names of the
    /// failing ones (a check that timed out is failing).
    pub async fn failing(&self) -> Vec<String> {
        let results = futures::future::join_all(self.checks.iter().map(|check| async move {
            match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
                Ok(Ok(())) => None,
                Ok(Err(error)) => {
                    tracing::warn!(backend = check.name(), %error, "readiness check failed");
                    Some(check.name().to_owned())
                }
                Err(_) => {
                    tracing::warn!(backend = check.name(), "readiness check timed out");
                    Some(check.name().to_owned())
                }
            }
        }))
        .await;
        results.into_iter().flatten().collect()
    }
}

/// `/readyz` check of a MySQL pool.
#[derive(Debug)]
pub struct MySqlCheck(pub sqlx::MySqlPool);

impl ReadinessCheck for MySqlCheck {
    fn name(&self) -> &str {
        "mysql"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { sqlx::query("SELECT 1").execute(&self.0).await.map(drop).map_err(|e| e.to_string()) })
    }
}

/// `/readyz` check of a Redis connection (a PING). Build the connection with
/// [`crate::redis::connect`], so a ping during an outage fails fast and also starts the reconnection.
#[derive(Clone)]
pub struct RedisCheck(pub crate::redis::ConnectionManager);

impl std::fmt::Debug for RedisCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisCheck")
    }
}

impl ReadinessCheck for RedisCheck {
    fn name(&self) -> &str {
        "redis"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let mut conn = self.0.clone();
        Box::pin(async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await.map(drop).map_err(|e| e.to_string())
        })
    }
}

/// The process-wide Prometheus recorder, installed on first use (tests run several services in one
/// process, so this must be idempotent).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Durations in seconds, except sizes: `*_batch_size` counts the writes one transaction of
            // a lane took (up to 64).
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Suffix("_batch_size".into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
                    )
                })
                // How long events wait for a consumer: milliseconds when all is well, minutes to
                // hours behind an outage.
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Suffix("_lag_seconds".into()),
                        &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0],
                    )
                })
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness); ours still renders.
            let _ = metrics::set_global_recorder(recorder);
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .ok();
            handle
        })
        .clone()
}

/// The `/healthz`, `/readyz` and `/metrics` routes, to serve alone or merge into a public router.
pub fn router(readiness: Readiness) -> Router {
    let handle = metrics_handle();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(readiness)
        .route("/metrics", get(move || std::future::ready(handle.render())))
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz(State(readiness): State<Readiness>) -> Response {
    let failing = readiness.failing().await;
    if failing.is_empty() {
        axum::Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "unavailable", "failing": failing})))
            .into_response()
    }
}

/// Serves the ops routes on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(readiness)).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;

    struct Fixed(&'static str, bool);

    impl ReadinessCheck for Fixed {
        fn name(&self) -> &str {
            self.0
        }

        fn check(&self) -> BoxFuture<'_, Result<(), String>> {
            let ok = self.1;
            Box::pin(async move { if ok { Ok(()) } else { Err("down".to_owned()) } })
        }
    }

    async fn get(readiness: Readiness, path: &str) -> (StatusCode, String) {
        let response = router(readiness).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readyz_names_every_failing_backend() {
        let readiness =
            Readiness::default().with(Fixed("mysql", true)).with(Fixed("redis", false)).with(Fixed("amqp", false));
        let (status, body) = get(readiness, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["failing"], serde_json::json!(["redis", "amqp"]));
    }

    struct Hanging;

    impl ReadinessCheck for Hanging {
        fn name(&self) -> &str {
            "redis"
        }

        fn check(&self) -> BoxFuture<'_, Result<(), String>> {
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test]
    async fn readyz_answers_within_a_second_naming_a_backend_that_hangs() {
        let readiness = Readiness::default().with(Fixed("mysql", true)).with(Hanging).with(Hanging);
        let started = std::time::Instant::now();

        let (status, body) = get(readiness, "/readyz").await;

        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["failing"], serde_json::json!(["redis", "redis"]));
    }

    #[tokio::test]
    async fn readyz_is_ok_when_every_backend_answers() {
        let (status, _) = get(Readiness::default().with(Fixed("mysql", true)), "/readyz").await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn healthz_and_metrics_answer() {
        // Metrics recorded before the recorder is installed are lost: install it first, as serve() does.
        metrics_handle();
        metrics::counter!("ordo_test_counter_total").increment(1);
        let (status, body) = get(Readiness::default(), "/healthz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"status":"ok"}"#));
        let (status, body) = get(Readiness::default(), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("ordo_test_counter_total 1"), "{body}");
    }
}
