use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{RateLimit, Readiness, TelemetryError, render};

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A running `/metrics` + `/ready` endpoint; stops when its shutdown token is cancelled.
#[derive(Debug)]
pub struct MetricsServer {
    pub local_addr: SocketAddr,
    pub task: JoinHandle<()>,
}

/// Binds `addr` and serves `GET /metrics` and `GET /ready` until `shutdown` is cancelled.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    ready: Readiness,
    shutdown: CancellationToken,
) -> Result<MetricsServer, TelemetryError> {
    let listener =
        TcpListener::bind(addr).await.map_err(|source| TelemetryError::Bind { addr, source })?;
    let local_addr =
        listener.local_addr().map_err(|source| TelemetryError::Bind { addr, source })?;
    tracing::info!(addr = %local_addr, "serving /metrics and /ready");
    let task = tokio::spawn(async move {
        let mut accept_errors = RateLimit::new(Duration::from_secs(10));
        loop {
            let stream = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // E.g. out of file descriptors: back off instead of spinning.
                        if let Some(suppressed) = accept_errors.allow() {
                            tracing::warn!(error = %e, suppressed, "metrics endpoint accept failed");
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let registry = Arc::clone(&registry);
            let ready = ready.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let response = respond(&req, &registry, &ready);
                    async move { Ok::<_, Infallible>(response) }
                });
                // A client that does not send its request headers in time is dropped.
                let served = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(e) = served {
                    tracing::debug!(error = %e, "metrics connection ended with an error");
                }
            });
        }
    });
    Ok(MetricsServer { local_addr, task })
}

fn respond(
    req: &Request<hyper::body::Incoming>,
    registry: &Registry,
    ready: &Readiness,
) -> Response<Full<Bytes>> {
    let reply = |status, content_type: &str, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("static response parts are valid")
    };
    if req.method() != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n".into());
    }
    match req.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            render(registry),
        ),
        "/ready" if ready.get() => reply(StatusCode::OK, "text/plain", "ready\n".into()),
        "/ready" => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n".into()),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "try /metrics or /ready\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn serves_metrics_and_readiness_then_stops() {
        let mut registry = crate::component_registry("ml-detector");
        let counter = Counter::<u64>::default();
        registry.register("detections", "Detections published", counter.clone());
        counter.inc_by(3);
        let ready = Readiness::default();
        let shutdown = CancellationToken::new();
        let server = serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(registry),
            ready.clone(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        let addr = server.local_addr;

        let metrics = get(addr, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics.contains("mld_ml_detector_detections_total 3"), "{metrics}");
        assert!(get(addr, "/ready").await.starts_with("HTTP/1.1 503"));
        ready.set(true);
        assert!(get(addr, "/ready").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));

        shutdown.cancel();
        server.task.await.unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "listener closed");
    }
}
