//! The outermost middleware: gives each request an id (a sane `X-Request-Id` from the
//! client, else a new one, echoed in the response), resolves the client address, counts
//! body bytes both ways, and when the response body ends (or the connection drops) writes
//! one access-log line and the request metrics.
//!
//! The line holds method, path (never the query), status, bytes, duration, principal,
//! client and request id: no header values, so no password, Basic credentials or token.

use std::{
    net::IpAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Request, State},
    http::{HeaderName, HeaderValue, Method},
    middleware::Next,
    response::Response,
};
use http_body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::{addr::ClientAddr, context::RequestContext, metrics};
use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A client's request id is kept if it is short and plain; anything else is replaced, so
/// the log never carries what a client chose to smuggle into it.
fn sane_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
}

pub async fn middleware(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = match req.headers().get(&REQUEST_ID) {
        Some(v) if sane_id(v) => v.clone(),
        _ => {
            let v = HeaderValue::try_from(uuid::Uuid::new_v4().simple().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
            req.headers_mut().insert(REQUEST_ID, v.clone());
            v
        }
    };
    let peer = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let client = peer.map(|p| super::addr::resolve(p, req.headers(), &app.ops.trusted_proxies));
    if let Some(c) = client {
        req.extensions_mut().insert(ClientAddr(c));
    }
    let received = Arc::new(AtomicU64::new(0));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let cut = app.ops.cut_bodies.clone().cancelled_owned();
    let req = req.map(|b| Body::new(CountedBody { inner: b, count: received.clone(), cut: Box::pin(cut) }));

    let ctx = Arc::new(RequestContext::default());
    let mut resp = ctx.clone().scope(next.run(req)).await;
    resp.headers_mut().insert(REQUEST_ID, id.clone());
    let finish = Finish {
        log: app.ops.access_log,
        method,
        path,
        status: resp.status().as_u16(),
        id,
        client,
        ctx,
        start,
        received,
    };
    resp.map(|b| {
        let ended = b.is_end_stream();
        Body::new(LoggedBody { inner: b, sent: 0, ended, finish: Some(finish) })
    })
}

/// What the log line needs once the response body is done.
struct Finish {
    log: bool,
    method: Method,
    path: String,
    status: u16,
    id: HeaderValue,
    client: Option<IpAddr>,
    ctx: Arc<RequestContext>,
    start: Instant,
    received: Arc<AtomicU64>,
}

impl Finish {
    fn emit(self, sent: u64, complete: bool) {
        let elapsed = self.start.elapsed();
        let received = self.received.load(Ordering::Relaxed);
        let family = metrics::family(&self.path);
        metrics::request(
            family,
            metrics::method_label(&self.method),
            self.status,
            elapsed.as_secs_f64(),
            received,
            sent,
        );
        if !self.log {
            return;
        }
        let principal = match self.ctx.principal() {
            None => "-",
            Some("") => "(anonymous)",
            Some(p) => p,
        };
        let client = self.client.map(|c| c.to_string());
        tracing::info!(
            target: "berth::access",
            method = %self.method,
            path = %self.path,
            status = self.status,
            bytes_in = received,
            bytes_out = sent,
            duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3,
            principal = %principal,
            client = %client.as_deref().unwrap_or("-"),
            request_id = %self.id.to_str().unwrap_or("-"),
            complete,
            "request"
        );
    }
}

pin_project! {
    /// A request body that counts its bytes and ends with an error once the server's
    /// drain deadline passes.
    struct CountedBody {
        #[pin]
        inner: Body,
        count: Arc<AtomicU64>,
        cut: Pin<Box<WaitForCancellationFutureOwned>>,
    }
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.count.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.cut.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err("the server is shutting down".into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// A response body that counts its bytes and writes the access line when dropped.
    struct LoggedBody {
        #[pin]
        inner: Body,
        sent: u64,
        ended: bool,
        finish: Option<Finish>,
    }

    impl PinnedDrop for LoggedBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(finish) = this.finish.take() {
                finish.emit(*this.sent, *this.ended);
            }
        }
    }
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let mut inner = this.inner;
        let polled = inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.sent += data.len() as u64;
                }
                // hyper stops polling once the body says it has ended.
                *this.ended |= inner.is_end_stream();
            }
            Poll::Ready(None) => *this.ended = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        for ok in ["abc", "0f1e-22_x.y:z", &"a".repeat(128)] {
            assert!(sane_id(&HeaderValue::from_str(ok).unwrap()), "{ok}");
        }
        for bad in ["", "a b", "a\"b", "x=1", &"a".repeat(129), "tab\there"] {
            assert!(!sane_id(&HeaderValue::from_str(bad).unwrap()), "{bad}");
        }
    }
}
