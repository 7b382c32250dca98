//! `/healthz` answers 200 while the process serves; `/readyz` answers 200 only while the
//! database and the blob storage both answer within [`READY_TIMEOUT`], else 503 naming
//! which failed (details go to the log, not to the unauthenticated caller).

use std::time::Duration;

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};

use crate::state::{App, AppState};

pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn check<F, E>(what: &'static str, f: F) -> &'static str
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    match tokio::time::timeout(READY_TIMEOUT, f).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: {what} failed");
            super::metrics::unready(what);
            "failed"
        }
        Err(_) => {
            tracing::warn!("readiness: {what} did not answer within {READY_TIMEOUT:?}");
            super::metrics::unready(what);
            "timeout"
        }
    }
}

async fn database(app: &App) -> Result<(), sqlx::Error> {
    app.registry.database_ready().await
}

/// The store answers: the blob directory is there, or the bucket answers a HEAD (and, with
/// `storage.s3.check_on_start`, has taken the probe write).
async fn storage(app: &App) -> std::io::Result<()> {
    app.registry.storage_ready().await
}

async fn readyz(State(app): State<AppState>) -> Response {
    let (db, store) = tokio::join!(check("database", database(&app)), check("storage", storage(&app)));
    let status = if db == "ok" && store == "ok" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let state = if status == StatusCode::OK { "ready" } else { "unready" };
    (status, Json(serde_json::json!({"status": state, "database": db, "storage": store}))).into_response()
}
