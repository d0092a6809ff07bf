//! The HTTP listener: one hyper HTTP/1 connection task per client, each
//! request given an id and a tracing span, handed to the s3s service
//! (routing, signatures, XML) and on to [`Gateway`], and counted per S3
//! operation ([`crate::metrics`]). Beside it: the `/metrics` endpoint and
//! the sweep of expired multipart uploads.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_client::Client;
use cairn_net::metrics::{outcome, Exposition, RequestMetrics};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::auth::KeyAuth;
use crate::config::GatewayConfig;
use crate::gateway::Gateway;
use crate::metrics::{request_id, OpRecorder, OpSlot};

/// A bound, not yet serving, gateway.
pub struct Server {
    listener: TcpListener,
    service: S3Service,
    metrics: RequestMetrics,
    exposition: Arc<Exposition>,
    metrics_listen: Option<SocketAddr>,
    /// For the sweep of expired uploads.
    sweeper: Gateway,
    sweep_every: Duration,
    upload_expiry: Duration,
}

impl Server {
    pub async fn bind(cfg: &GatewayConfig, client: Client) -> std::io::Result<Server> {
        let listener = TcpListener::bind(cfg.listen).await?;
        let mut b = S3ServiceBuilder::new(Gateway::new(client.clone(), cfg.root.clone()));
        b.set_auth(KeyAuth::new(&cfg.access_keys));
        b.set_access(OpRecorder);
        let mut registry = Registry::default();
        let metrics = RequestMetrics::register(&mut registry);
        Ok(Server {
            listener,
            service: b.build(),
            metrics,
            exposition: Arc::new(Exposition {
                registry,
                refresh: Box::new(|| {}),
            }),
            metrics_listen: cfg.metrics_listen,
            sweeper: Gateway::new(client, cfg.root.clone()),
            sweep_every: Duration::from_secs(cfg.upload_sweep_secs),
            upload_expiry: Duration::from_secs(cfg.upload_expiry_secs),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` completes; connections in flight are dropped.
    pub async fn serve(self, stop: impl Future<Output = ()>) -> std::io::Result<()> {
        tokio::pin!(stop);
        let (stopping, stopped) = tokio::sync::watch::channel(false);
        let mut metrics_stop = stopped.clone();
        cairn_net::metrics::spawn(self.metrics_listen, self.exposition, async move {
            let _ = metrics_stop.wait_for(|s| *s).await;
        })
        .await
        .map_err(|e| {
            std::io::Error::new(
                e.source.kind(),
                format!("metrics on {}: {}", e.addr, e.source),
            )
        })?;
        let (sweeper, every) = (self.sweeper, self.sweep_every);
        let expiry_ns = i64::try_from(self.upload_expiry.as_nanos()).unwrap_or(i64::MAX);
        let sweeping = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                sweeper.sweep_uploads(expiry_ns).await;
            }
        });
        let _stop_sweeping = AbortOnDrop(sweeping);
        loop {
            let (socket, peer) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut stop => break,
            };
            let service = self.service.clone();
            let metrics = self.metrics.clone();
            tokio::spawn(async move {
                let handle = hyper::service::service_fn(move |req| {
                    handle(service.clone(), metrics.clone(), req)
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(socket), handle);
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
            });
        }
        let _ = stopping.send(true);
        Ok(())
    }
}

/// One request: an id, a span, the s3s service, the id on the answer,
/// and the request counted under its operation.
async fn handle(
    service: S3Service,
    metrics: RequestMetrics,
    mut req: hyper::Request<Incoming>,
) -> Result<s3s::HttpResponse, s3s::HttpError> {
    let id = request_id();
    let slot = OpSlot::default();
    req.extensions_mut().insert(slot.clone());
    let span = tracing::info_span!(
        "s3 request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let started = Instant::now();
    let answer = hyper::service::Service::call(&service, req)
        .instrument(span.clone())
        .await;
    let op = slot.get();
    let ended = match &answer {
        Ok(r) if r.status().as_u16() == 403 => outcome::DENIED,
        Ok(r) if r.status().as_u16() < 400 => outcome::OK,
        _ => outcome::ERROR,
    };
    metrics.observe(op, ended, started.elapsed());
    span.in_scope(|| tracing::debug!(op, outcome = ended, "request handled"));
    answer.map(|mut r| {
        if let Ok(v) = HeaderValue::from_str(&id) {
            r.headers_mut().insert("x-amz-request-id", v);
        }
        r
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
