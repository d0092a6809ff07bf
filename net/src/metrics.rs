//! Prometheus metrics that every server keeps, and the `/metrics` HTTP
//! endpoint that exposes them (text format, scraped by Prometheus).
//!
//! Each server owns a [`prometheus_client::registry::Registry`] with its
//! own metrics beside the shared [`RequestMetrics`] (requests per
//! operation and outcome, latency histograms per operation). Gauges that
//! mirror state kept elsewhere (Raft term, chunks stored) are set by the
//! server's refresh function just before each scrape.
//!
//! The endpoint is plain HTTP without authentication, as Prometheus
//! expects: bind it to a private address (the dev cluster uses
//! 127.0.0.1). It answers `GET /metrics` only, reads a request header
//! within 5 s and serves at most [`MAX_SCRAPERS`] connections at once.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

/// Scrape connections served at once; more wait for the listener.
pub const MAX_SCRAPERS: usize = 16;
/// How long a scraper may take to send its request header.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// How a request ended, as the `outcome` label says it.
pub mod outcome {
    pub const OK: &str = "ok";
    /// Answered with an error (bad request, not leader, missing chunk...).
    pub const ERROR: &str = "error";
    /// Refused: the caller's role may not make it.
    pub const DENIED: &str = "denied";

    /// The outcome of an answer.
    pub fn of<T>(resp: &Result<T, cairn_proto::RpcError>) -> &'static str {
        match resp {
            Ok(_) => OK,
            Err(e) if e.code == cairn_proto::ErrorCode::PermissionDenied => DENIED,
            Err(_) => ERROR,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    op: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

/// Requests handled by a server: a counter per operation and outcome
/// (`cairn_requests_total`) and a latency histogram per operation
/// (`cairn_request_seconds`, 100 µs to ~13 s).
#[derive(Clone)]
pub struct RequestMetrics {
    requests: Family<RequestLabels, Counter>,
    seconds: Family<OpLabel, Histogram>,
}

impl RequestMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let seconds = Family::<OpLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        registry.register(
            "cairn_requests",
            "Requests handled, by operation and outcome",
            requests.clone(),
        );
        registry.register(
            "cairn_request_seconds",
            "Time from reading a request to its answer, by operation",
            seconds.clone(),
        );
        RequestMetrics { requests, seconds }
    }

    /// Counts one request of `op` that ended with `outcome` after `took`.
    pub fn observe(&self, op: &'static str, outcome: &'static str, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels { op, outcome })
            .inc();
        self.seconds
            .get_or_create(&OpLabel { op })
            .observe(took.as_secs_f64());
    }
}

/// What a `/metrics` scrape shows: a registry, and a function that brings
/// its state-mirroring gauges up to date first.
pub struct Exposition {
    pub registry: Registry,
    pub refresh: Box<dyn Fn() + Send + Sync>,
}

impl Exposition {
    /// The text a scrape returns.
    pub fn render(&self) -> String {
        (self.refresh)();
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        out
    }
}

fn respond(exposition: &Exposition, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if req.method() != Method::GET {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".to_string(),
        )
    } else if req.uri().path() != "/metrics" {
        (
            StatusCode::NOT_FOUND,
            "text/plain",
            "metrics are at /metrics\n".to_string(),
        )
    } else {
        (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            exposition.render(),
        )
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// The metrics endpoint could not listen where configured.
#[derive(Debug, thiserror::Error)]
#[error("metrics endpoint {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// Serves `exposition` at `addr` until `shutdown` resolves, on a task of
/// its own; `None` when no address is configured. Binds before returning,
/// so that a port in use is a start-up error.
pub async fn spawn(
    addr: Option<SocketAddr>,
    exposition: Arc<Exposition>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Option<tokio::task::JoinHandle<()>>, BindError> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })?;
    tracing::info!(%addr, "metrics at http://{addr}/metrics");
    Ok(Some(tokio::spawn(serve(listener, exposition, shutdown))))
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    exposition: Arc<Exposition>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let slots = Arc::new(Semaphore::new(MAX_SCRAPERS));
    loop {
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let exposition = exposition.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let resp = respond(&exposition, &req);
                async move { Ok::<_, Infallible>(resp) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "metrics scrape ended badly");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::gauge::Gauge;

    #[test]
    fn requests_are_counted_and_timed_per_operation() {
        let mut registry = Registry::default();
        let m = RequestMetrics::register(&mut registry);
        m.observe("Put", outcome::OK, Duration::from_millis(3));
        m.observe("Put", outcome::OK, Duration::from_millis(5));
        m.observe("Get", outcome::DENIED, Duration::from_micros(50));
        let gauge = Gauge::<i64>::default();
        registry.register("cairn_test_gauge", "a gauge", gauge.clone());
        let exposition = Exposition {
            registry,
            refresh: Box::new(move || {
                gauge.set(42);
            }),
        };
        let text = exposition.render();
        assert!(
            text.contains(r#"cairn_requests_total{op="Put",outcome="ok"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"cairn_requests_total{op="Get",outcome="denied"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"cairn_request_seconds_count{op="Put"} 2"#),
            "{text}"
        );
        assert!(text.contains("cairn_test_gauge 42"), "{text}");
    }
}
