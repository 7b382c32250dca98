//! Assembling and running the server: open the database and storage, bootstrap the first
//! superuser and the signing key, and serve the Distribution API and the token service.

use std::{future::Future, sync::Arc};

use axum::{
    Router,
    http::{HeaderName, HeaderValue},
};
use tokio::net::TcpListener;
use tower_http::{catch_panic::CatchPanicLayer, set_header::SetResponseHeaderLayer, trace::TraceLayer};

use crate::{
    api,
    auth::{self, jwt::Keys},
    config::Config,
    db::Db,
    oci,
    registry::Registry,
    storage::BlobStore,
};

/// Shared state of a running server.
pub struct App {
    pub registry: Registry,
    pub keys: Keys,
    pub config: Config,
    /// `<public_url>/token`, the challenge's realm.
    pub realm: String,
}

pub type AppState = Arc<App>;

/// Opens (and migrates) the database named by the configuration.
pub async fn open_db(config: &Config) -> anyhow::Result<Db> {
    tokio::fs::create_dir_all(&config.data_dir).await?;
    let db = Db::connect(&config.database_url()).await?;
    db.migrate().await?;
    Ok(db)
}

/// Builds the application for a server bound at `addr`.
pub async fn build(config: Config, addr: std::net::SocketAddr) -> anyhow::Result<Router> {
    let db = open_db(&config).await?;
    auth::users::bootstrap_admin(&db, config.initial_admin_password.as_deref()).await?;
    let keys = Keys::load_or_create(&db, &config.auth.service, config.auth.token_ttl_secs).await?;
    keys.spawn_refresh();
    let store = BlobStore::open(&config).await?;
    let public = config.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let realm = format!("{}/token", public.trim_end_matches('/'));
    let registry = Registry::new(db, store, config.limits.max_manifest_bytes);
    let app = Arc::new(App { registry, keys, config, realm });
    spawn_gc(&app);
    Ok(Router::new()
        .merge(oci::routes())
        .merge(auth::routes())
        .merge(api::routes())
        .with_state(app)
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("docker-distribution-api-version"),
            HeaderValue::from_static("registry/2.0"),
        ))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http()))
}

/// Runs garbage collection every `gc.interval_secs` while the server runs (the task holds
/// only a weak reference, so it ends with the server).
fn spawn_gc(app: &AppState) {
    let interval = app.config.gc.interval_secs;
    if interval == 0 {
        return;
    }
    let weak = Arc::downgrade(app);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(interval));
        tick.tick().await; // the first tick is immediate; start one interval in
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else { return };
            match app.registry.collect_garbage(&app.config.gc, crate::db::now()).await {
                Ok(r) => tracing::info!(
                    blobs = r.blobs_removed,
                    bytes = r.bytes_freed,
                    uploads = r.uploads_expired,
                    collections = r.collections_removed.len(),
                    "garbage collection"
                ),
                Err(e) => tracing::error!(error = %e, "garbage collection failed"),
            }
        }
    });
}

/// Serves until `shutdown` completes.
pub async fn serve_with_shutdown(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let router = build(config, addr).await?;
    tracing::info!(%addr, "berth listening");
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, config: Config) -> anyhow::Result<()> {
    serve_with_shutdown(listener, config, std::future::pending()).await
}
