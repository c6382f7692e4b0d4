//! The benchmark ceiling: a bare axum handler answering the same JSON as `GET /api/v1/users/me`, with
//! no authentication, no backend and no middleware. `just bench` measures it in the same run as the
//! gateway so every gateway figure reads as a ratio to what this machine can do at all.
//!
//! `cargo run --release -p ordo-gateway --example reference -- 127.0.0.1:18090`

use axum::Router;
use axum::http::header;
use axum::routing::get;

const USER: &str = r#"{"id":"0190b6a4-7c1e-7000-8000-000000000001","email":"bench@example.com","display_name":"Bench","role":"member","disabled":false,"created_at":"2026-11-25T12:00:00Z","updated_at":"2026-11-25T12:00:00Z","version":1}"#;

/// The same allocator as the binaries, so the ceiling is measured under the same conditions.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18090".to_owned());
    let app =
        Router::new().route("/api/v1/users/me", get(|| async { ([(header::CONTENT_TYPE, "application/json")], USER) }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
