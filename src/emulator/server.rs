//! The accept loop: HTTP/1.1 and HTTP/2 via hyper, header read timeout, graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::handler::{App, handle};

/// Serves connections from `listener` until `shutdown` completes, then drains for up to 5 s.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.read_timeout);
    let (stop_waiting, stopping) = tokio::sync::watch::channel(());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors or a reset during accept: back off, keep serving.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let read_timeout = app.config.read_timeout;
                let app = app.clone();
                let service = service_fn(move |request| {
                    let app = app.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(&app, request).await) }
                });
                // hyper's header timeout only starts once the auto builder has seen the first
                // bytes (it reads them to tell HTTP/1 from HTTP/2): a client that sends nothing
                // would be kept forever. Give it the same time to start.
                let (builder, watcher, mut stopping) =
                    (builder.clone(), graceful.watcher(), stopping.clone());
                tokio::spawn(async move {
                    let mut first = [0u8; 1];
                    tokio::select! {
                        started = tokio::time::timeout(read_timeout, stream.peek(&mut first)) => {
                            if !matches!(started, Ok(Ok(n)) if n > 0) {
                                return;
                            }
                        }
                        _ = stopping.changed() => return,
                    }
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection).await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop_waiting.send(());
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
}
