//! The HTTP listener: one hyper HTTP/1 connection task per client, each
//! request handed to the s3s service (routing, signatures, XML) and on
//! to [`Gateway`].

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

use crate::auth::KeyAuth;
use crate::config::GatewayConfig;
use crate::gateway::Gateway;
use cairn_client::Client;

/// A bound, not yet serving, gateway.
pub struct Server {
    listener: TcpListener,
    service: s3s::service::S3Service,
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
        Ok(Server {
            listener,
            service: b.build(),
            sweeper: Gateway::new(client, cfg.root.clone()),
            sweep_every: Duration::from_secs(cfg.upload_sweep_secs),
            upload_expiry: Duration::from_secs(cfg.upload_expiry_secs),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` completes; connections in flight are dropped.
    pub async fn serve(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
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
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut stop => return,
            };
            let service = self.service.clone();
            tokio::spawn(async move {
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(socket), service);
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
            });
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
