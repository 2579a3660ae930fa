//! The accept loop: plain TCP or TLS, HTTP/1.1 and HTTP/2 (hyper-util's auto builder: h2c by
//! prior knowledge, or h2 over TLS), every bound of [`Limits`], graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::watchdog::Activity;
use super::{Body, Limits};

/// What a server does with each request and connection.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request. A panic here is caught and answered with a bare 500.
    fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> impl Future<Output = Response<Body>> + Send;

    /// Called when a connection opens (after TLS); the value is dropped when it closes.
    fn connected(self: Arc<Self>) -> impl Send + 'static {}
}

/// How long an idle connection that is told to close may take to say goodbye (GOAWAY).
const GOODBYE: Duration = Duration::from_millis(500);

/// Serves connections from `listener` (over TLS when `tls` is set) until `shutdown` completes,
/// then stops accepting, lets requests in flight finish for `limits.drain_timeout`, and drops
/// the connections still open.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) {
    let builder = builder(&limits);
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors or a reset during accept: back off, keep serving.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (builder, handler, tls) = (builder.clone(), handler.clone(), tls.clone());
                let mut stopping = stopping.clone();
                connections.spawn(async move {
                    let Some(acceptor) = tls else {
                        return connection(builder, stream, handler, limits, stopping).await;
                    };
                    // A client that never finishes the handshake, or fails it, only loses its
                    // own connection.
                    let handshake = tokio::time::timeout(limits.header_timeout, acceptor.accept(stream));
                    tokio::select! {
                        done = handshake => {
                            if let Ok(Ok(stream)) = done {
                                connection(builder, stream, handler, limits, stopping).await;
                            }
                        }
                        _ = stopping.changed() => {}
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(limits.drain_timeout, drained).await;
    connections.abort_all();
}

/// The HTTP/1.1 + HTTP/2 builder with every bound of `limits`.
fn builder(limits: &Limits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout)
        .max_concurrent_streams(limits.max_h2_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// One connection over `io` until it ends, idles past `limits.header_timeout`, or the server
/// stops (then it finishes what is in flight: the accept loop bounds that).
async fn connection<I, H>(
    builder: Builder<TokioExecutor>,
    io: I,
    handler: Arc<H>,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let _connected = handler.clone().connected();
    let activity = Activity::new();
    let service = {
        let activity = activity.clone();
        service_fn(move |request| {
            let busy = activity.busy();
            let handler = handler.clone();
            async move {
                let answer = AssertUnwindSafe(handler.handle(request)).catch_unwind();
                let response = answer.await.unwrap_or_else(|_| internal_error());
                drop(busy);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopping.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
        () = activity.idle_for(limits.header_timeout) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(GOODBYE, conn).await;
        }
    }
}

/// The answer when a handler panicked: a bare 500, the connection stays usable.
fn internal_error() -> Response<Body> {
    let mut response = Response::new(Body::from("internal error\n"));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
