//! The accept loop and each connection's life. Clients are outside input:
//! a connection that sends no complete request head, or moves no byte while
//! no request of it is being handled, is closed after the idle timeout; at
//! most `max_connections` are open at once (the rest wait in the kernel's
//! backlog); a request body is capped in size and in time; on shutdown,
//! requests in flight get the grace period and every connection still open
//! after it is dropped, so stopping never waits on a client.
//!
//! HTTP/1.1 only: browsers, Prometheus and curl speak it to a plain-HTTP
//! port, and it keeps one timer model.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower_service::Service as _;

/// Request bodies larger than this are refused with 413: the API's largest
/// body is a resolution note.
pub const MAX_BODY: u64 = 64 * 1024;
/// A request head (request line and headers) larger than this is refused.
const MAX_HEAD: usize = 64 * 1024;

/// The longest idle timeout honoured.
const MAX_IDLE: Duration = Duration::from_secs(24 * 3600);

/// How the server treats its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A connection without a complete request head, or without a byte
    /// moved while no request is handled, is closed after this long; a
    /// request body must have arrived within it.
    pub idle_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// After shutdown is asked for, requests in flight get this long.
    pub grace: Duration,
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets
/// requests in flight finish within the grace period and drops the rest.
/// Returns once every connection is gone, with the router.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // Longer would only keep dead clients; far longer would overflow hyper's
    // deadline arithmetic.
    let limits = Limits {
        idle_timeout: limits.idle_timeout.min(MAX_IDLE),
        ..limits
    };
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut conns = JoinSet::new();
    let mut refused = Backoff::default();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.map_err(std::io::Error::other)?,
            () = shutdown.cancelled() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                if let Some(pause) = refused.after(&e) {
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = shutdown.cancelled() => break,
                    }
                }
                continue;
            }
        };
        refused = Backoff::default();
        let (router, stop) = (router.clone(), shutdown.clone());
        conns.spawn(async move {
            connection(stream, peer, router, limits, stop).await;
            drop(permit);
        });
        // Finished connections leave the set as new ones come in.
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            connections = conns.len(),
            "closing the HTTP connections still open after the grace period"
        );
        conns.shutdown().await;
    }
    Ok(())
}

/// Pauses of the accept loop while the process is out of file descriptors
/// (or memory): accepting again at once would spin, and closing idle
/// connections or finishing checks frees them soon.
#[derive(Default)]
struct Backoff {
    streak: u32,
}

impl Backoff {
    /// How long to wait after `e`, or `None` when the error concerned only
    /// the one connection (it was reset before it was accepted).
    fn after(&mut self, e: &std::io::Error) -> Option<Duration> {
        if !super::fds::exhausted(e) {
            tracing::debug!(error = %e, "accepting a connection failed");
            return None;
        }
        self.streak += 1;
        if self.streak == 1 {
            tracing::warn!(error = %e, "cannot accept connections: out of resources; pausing the accept loop");
        }
        Some(Duration::from_millis(10 << self.streak.min(6)))
    }
}

/// One client connection, served until it ends, idles out or is dropped.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        stream,
        activity: activity.clone(),
    });
    let seen = activity.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (mut router, activity) = (router.clone(), seen.clone());
        async move {
            let _busy = activity.busy();
            let Some(req) = admit(req, peer, limits.idle_timeout) else {
                return Ok::<_, Infallible>(too_large());
            };
            router.call(req).await
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(MAX_HEAD)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let Some(idle_at) = activity.idle_at(limits.idle_timeout) else {
            tracing::debug!(%peer, "closing an idle connection");
            return;
        };
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                return;
            }
            () = shutdown.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(idle_at) => {}
        }
    }
}

/// The request as the router gets it: with the peer's address, its body
/// capped in size and in time; `None` when its declared length is too large.
fn admit(req: Request<Incoming>, peer: SocketAddr, within: Duration) -> Option<Request<Body>> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return None;
    }
    let (mut parts, incoming) = req.into_parts();
    parts.extensions.insert(ConnectInfo(peer));
    let body = if incoming.is_end_stream() {
        Body::empty()
    } else {
        timed_body(incoming, Instant::now() + within)
    };
    Some(Request::from_parts(parts, body))
}

/// A body that fails once `deadline` passes: one byte a minute would
/// otherwise hold a handler and its connection for a day.
fn timed_body(incoming: Incoming, deadline: Instant) -> Body {
    let frames = Body::new(incoming).into_data_stream();
    let stream = futures_util::stream::unfold(frames, move |mut frames| async move {
        use futures_util::StreamExt as _;
        match tokio::time::timeout_at(deadline, frames.next()).await {
            Ok(next) => Some((next?, frames)),
            Err(_) => Some((
                Err(axum::Error::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                ))),
                frames,
            )),
        }
    });
    Body::from_stream(stream)
}

fn too_large() -> Response<Body> {
    super::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request bodies are limited to {MAX_BODY} bytes"),
    )
    .into_response()
}

/// When the connection last moved a byte, and how many of its requests are
/// being handled (a handler may think for a while without a byte moving).
struct Activity {
    start: Instant,
    /// Milliseconds after `start`.
    last: AtomicU64,
    handling: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }

    /// When the connection counts as idle, or `None` when it already does.
    fn idle_at(&self, timeout: Duration) -> Option<Instant> {
        if self.handling.load(Ordering::Relaxed) > 0 {
            return Some(Instant::now() + timeout);
        }
        let last = self.start + Duration::from_millis(self.last.load(Ordering::Relaxed));
        let at = last + timeout;
        (at > Instant::now()).then_some(at)
    }

    fn busy(self: &Arc<Self>) -> Handling {
        self.handling.fetch_add(1, Ordering::Relaxed);
        Handling(self.clone())
    }
}

/// A request being handled; the count drops with it, however the handler ends.
struct Handling(Arc<Activity>);

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.touch();
        self.0.handling.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The client's stream, noting every byte that moves.
struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
