//! The accept loop: HTTP/1.1 and HTTP/2 (over TLS when configured) through hyper-util,
//! with the peer address in each request (`ConnectInfo`), a bound on header size and on the
//! time to receive headers, and a graceful shutdown that stops accepting, lets requests in
//! flight finish until the drain deadline, then cuts request bodies (uploads record what
//! arrived, so they stay resumable) and gives handlers a moment to record it.

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo, http::Request};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{
        conn::auto,
        graceful::{GracefulShutdown, Watcher},
    },
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::tls::Tls;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After bodies are cut, how long handlers get to record what they received.
const CUT_GRACE: Duration = Duration::from_secs(5);

pub struct Options {
    /// Bound on a request's headers (HTTP/2 header list; HTTP/1 also gets at least this
    /// much read buffer, and the access middleware answers 431 above it).
    pub max_header_bytes: usize,
    /// Time allowed to receive a request's headers (HTTP/1).
    pub header_timeout: Option<Duration>,
    /// Time requests in flight get after shutdown begins.
    pub drain: Duration,
    pub tls: Option<Arc<Tls>>,
    /// Cancelled at the drain deadline (see [`super::Ops::cut_bodies`]).
    pub cut_bodies: CancellationToken,
}

fn builder(opts: &Options) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // The read buffer must hold a request head of `max_header_bytes`, and need not be
    // bigger: hyper grows it only while reads fill it, so a streamed upload body costs at
    // most this much per connection (hyper's default, ~400 KiB, cost 26 MiB at 64 uploads).
    let buf = opts.max_header_bytes.saturating_add(8192).max(64 * 1024);
    b.http1().timer(TokioTimer::new()).header_read_timeout(opts.header_timeout).max_buf_size(buf);
    b.http2().timer(TokioTimer::new()).max_header_list_size(u32::try_from(opts.max_header_bytes).unwrap_or(u32::MAX));
    b
}

/// Serves `router` on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    opts: Options,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let builder = Arc::new(builder(&opts));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = RouterService { router: router.clone(), peer };
        let (builder, tls, watcher) = (builder.clone(), opts.tls.clone(), graceful.watcher());
        tokio::spawn(async move {
            match tls {
                None => run(TokioIo::new(stream), service, &builder, watcher).await,
                Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await {
                    Ok(Ok(stream)) => run(TokioIo::new(stream), service, &builder, watcher).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    let in_flight = graceful.count();
    if in_flight > 0 {
        tracing::info!(connections = in_flight, drain_secs = opts.drain.as_secs(), "draining");
    }
    let drained = graceful.shutdown();
    tokio::pin!(drained);
    if tokio::time::timeout(opts.drain, &mut drained).await.is_err() {
        tracing::warn!("drain deadline passed; cutting request bodies (uploads stay resumable)");
        opts.cut_bodies.cancel();
        let _ = tokio::time::timeout(CUT_GRACE, &mut drained).await;
    }
    Ok(())
}

/// Hands each request of one connection to the router, with the peer address.
#[derive(Clone)]
struct RouterService {
    router: Router,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for RouterService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = tower::util::Oneshot<Router, Request<Body>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        self.router.clone().oneshot(req.map(Body::new))
    }
}

async fn run<I>(io: TokioIo<I>, service: RouterService, builder: &auto::Builder<TokioExecutor>, watcher: Watcher)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = builder.serve_connection_with_upgrades(io, service).into_owned();
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
