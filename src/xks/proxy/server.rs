//! The accept loop: TLS (tokio-rustls) with a handshake timeout (or plain HTTP, for a proxy
//! behind a TLS-terminating load balancer), HTTP/1.1 keep-alive (hyper)
//! with a header read timeout, one task per connection, graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::handler::{App, READ_TIMEOUT, handle};

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests in flight may take to finish once the proxy stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves connections from `listener` until `stop` turns true, then drains; over TLS unless
/// `tls` is None (plain HTTP).
pub(super) async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Arc<App>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT)
        .keep_alive(true);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors or a reset during accept: back off, keep serving.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, builder, app) = (acceptor.clone(), builder.clone(), app.clone());
                let (watcher, mut stopping) = (graceful.watcher(), stop.clone());
                tokio::spawn(async move {
                    let Some(acceptor) = acceptor else {
                        let connection = connection(&builder, stream, app.clone());
                        let _counted = app.connection();
                        let _ = watcher.watch(connection).await;
                        return;
                    };
                    // A client that never finishes the handshake, or fails it, only loses its
                    // own connection.
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    let tls = tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(tls)) => tls,
                            _ => return,
                        },
                        _ = stopping.changed() => return,
                    };
                    let connection = connection(&builder, tls, app.clone());
                    let _counted = app.connection();
                    let _ = watcher.watch(connection).await;
                });
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {}
    }
}

/// One HTTP/1.1 connection over `io` (TLS or plain TCP), every request handled by `app`.
fn connection<I>(
    builder: &http1::Builder,
    io: I,
    app: Arc<App>,
) -> impl hyper_util::server::graceful::GracefulConnection
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(&app, request).await) }
    });
    builder.serve_connection(TokioIo::new(io), service)
}
