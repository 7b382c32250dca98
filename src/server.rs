//! Assembling and running the server: open the database and storage, bootstrap the first
//! superuser and the signing key, and serve the Distribution API, the token service, the
//! management API and the operational endpoints (`/healthz`, `/readyz`, `/metrics`) behind
//! the middleware of [`crate::ops`].

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    http::{HeaderName, HeaderValue},
    middleware,
    routing::get,
};
use tokio::net::TcpListener;
use tower_http::{catch_panic::CatchPanicLayer, set_header::SetResponseHeaderLayer, timeout::RequestBodyTimeoutLayer};

use crate::{
    api,
    auth::{self, TokenService, TokenSettings, keys::Keys},
    config::Config,
    db::Db,
    oci,
    ops::{self, Ops, tls::Tls},
    registry::Registry,
    state::{App, AppState},
    storage::BlobStore,
    ui,
};

/// Opens (and migrates) the database named by the configuration.
pub async fn open_db(config: &Config) -> anyhow::Result<Db> {
    tokio::fs::create_dir_all(&config.data_dir).await?;
    let db = Db::connect_with(&config.database_url(), config.database.max_connections).await?;
    db.migrate().await?;
    Ok(db)
}

/// Builds the application for a server bound at `addr` (`https` when it serves TLS).
pub async fn build(config: Config, addr: SocketAddr) -> anyhow::Result<Router> {
    Ok(router(build_app(config, addr).await?))
}

/// Sizes the password-hashing pool and the credential cache from `auth.*` (before the
/// first hash of the process; later servers in the same process keep the first sizing).
fn configure_logins(auth: &crate::config::AuthConfig) {
    let mut size = auth::password::PoolSize::default();
    if auth.password_workers > 0 {
        size.workers = auth.password_workers;
    }
    size.queue = if auth.password_queue > 0 { auth.password_queue } else { 64 * size.workers };
    auth::password::configure(size);
    auth::login_cache::set_cache_secs(auth.credential_cache_secs);
}

async fn build_app(config: Config, addr: SocketAddr) -> anyhow::Result<AppState> {
    let metrics_on = config.metrics.enabled && ops::metrics::install().is_some();
    configure_logins(&config.auth);
    let db = open_db(&config).await?;
    auth::users::bootstrap_admin(&db, config.initial_admin_password.as_deref()).await?;
    let keys = Keys::load_or_create(&db, &config.auth.service, config.auth.token_ttl_secs).await?;
    keys.spawn_refresh();
    let store = BlobStore::open_configured(&config).await?;
    let scheme = if config.tls.cert.is_some() { "https" } else { "http" };
    let public = config.public_url.clone().unwrap_or_else(|| format!("{scheme}://{addr}"));
    let realm = format!("{}/token", public.trim_end_matches('/'));
    let tokens = TokenService::new(db.clone(), keys, TokenSettings::new(&config.auth, realm))
        .with_directory(auth::directory::Directory::new(&config.auth)?);
    let registry = Registry::new(db.clone(), store, config.limits.max_manifest_bytes).with_manifest_cache(
        config.limits.manifest_cache_bytes,
        std::time::Duration::from_millis(config.limits.tag_cache_ttl_ms),
    );
    let ops = Ops::new(&config);
    if !metrics_on {
        tracing::debug!("metrics off");
    }
    let oidc = auth::oidc::Oidc::new(&config.auth.oidc, &public)?;
    let app = Arc::new(App { registry, tokens, db, config, ops, oidc });
    spawn_gc(&app);
    Ok(app)
}

/// Every route, inside the operational middleware. Layers run outermost last: the access
/// log sees every answer, including the limits' refusals and caught panics.
fn router(app: AppState) -> Router {
    let limits = &app.config.limits;
    let mut routes = Router::new()
        .merge(oci::routes())
        .merge(auth::routes())
        .merge(api::routes())
        .merge(ops::health::routes())
        .merge(ui::routes());
    if app.config.metrics.enabled && app.config.metrics.listen.is_none() {
        routes = routes.route("/metrics", metrics_route(&app.config));
    }
    let mut routes = routes.with_state(app.clone()).layer(SetResponseHeaderLayer::overriding(
        HeaderName::from_static("docker-distribution-api-version"),
        HeaderValue::from_static("registry/2.0"),
    ));
    if limits.body_idle_secs > 0 {
        routes = routes.layer(RequestBodyTimeoutLayer::new(Duration::from_secs(limits.body_idle_secs)));
    }
    routes
        .layer(middleware::from_fn_with_state(app.clone(), ops::limits::middleware))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn_with_state(app, ops::access::middleware))
}

/// `GET /metrics`, behind `metrics.token` when one is set.
fn metrics_route<S: Clone + Send + Sync + 'static>(config: &Config) -> axum::routing::MethodRouter<S> {
    let token: Option<Arc<str>> = config.metrics.token.as_deref().map(Arc::from);
    get(move |headers: axum::http::HeaderMap| ops::metrics::render(token.clone(), headers))
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
        let mut tick = tokio::time::interval(Duration::from_secs(interval));
        tick.tick().await; // the first tick is immediate; start one interval in
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else { return };
            let started = std::time::Instant::now();
            match app.registry.collect_garbage(&app.config.gc, crate::db::now()).await {
                Ok(r) => {
                    ops::metrics::gc_pass(true, started.elapsed().as_secs_f64(), r.blobs_removed, r.bytes_freed);
                    tracing::info!(
                        blobs = r.blobs_removed,
                        bytes = r.bytes_freed,
                        uploads = r.uploads_expired,
                        collections = r.collections_removed.len(),
                        "garbage collection"
                    );
                }
                Err(e) => {
                    ops::metrics::gc_pass(false, started.elapsed().as_secs_f64(), 0, 0);
                    tracing::error!(error = %e, "garbage collection failed");
                }
            }
        }
    });
}

/// Serves until `shutdown` completes, then drains (`limits.shutdown_drain_secs`).
pub async fn serve_with_shutdown(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => Some(Arc::new(Tls::open(cert, key)?)),
        _ => None,
    };
    let metrics_listener = match &config.metrics.listen {
        Some(a) if config.metrics.enabled => Some(TcpListener::bind(a).await?),
        _ => None,
    };
    let app = build_app(config, addr).await?;
    let opts = ops::listen::Options {
        max_header_bytes: app.config.limits.max_header_bytes,
        header_timeout: Some(app.config.limits.request_timeout_secs).filter(|s| *s > 0).map(Duration::from_secs),
        drain: Duration::from_secs(app.config.limits.shutdown_drain_secs),
        tls: tls.clone(),
        cut_bodies: app.ops.cut_bodies.clone(),
    };
    let metrics_task = metrics_listener.map(|l| {
        tracing::info!(addr = ?l.local_addr().ok(), "metrics listening");
        let serve = axum::serve(l, Router::new().route("/metrics", metrics_route(&app.config)));
        tokio::spawn(async move {
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "metrics listener failed");
            }
        })
    });
    let reload = match &tls {
        Some(tls) => Some(ops::tls::reload_on_sighup(tls.clone())?),
        None => None,
    };
    let router = router(app);
    tracing::info!(%addr, tls = tls.is_some(), "berth listening");
    let result = ops::listen::serve(listener, router, opts, shutdown).await;
    for task in [metrics_task, reload].into_iter().flatten() {
        task.abort();
    }
    result?;
    tracing::info!("berth stopped");
    Ok(())
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, config: Config) -> anyhow::Result<()> {
    serve_with_shutdown(listener, config, std::future::pending()).await
}
