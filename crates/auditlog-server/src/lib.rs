//! The HTTP API of auditlog (SPEC §3) over any [`Store`]: ingest, event by seq, checkpoint,
//! public key, proofs and health. Handlers parse and answer; storage, hashing and validation
//! live in the store, ledger and core crates.
//!
//! Architecture invariant: this crate never names a concrete storage backend.

mod admin;
mod auth;
mod error;
mod events;
mod export;
mod handlers;
mod health;
mod ingest;
pub mod metrics;
mod openapi;
mod routes;
mod search;
mod throttle;
mod tlog;
mod trail;
mod ui;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

pub use error::ApiError;
pub use events::event_json;
pub use export::{
    EXPORT_NOTE_HEADER, Export, ExportFormat, SEARCH_PAGE, decode_seqs, encode_seqs,
    pin_checkpoint, spreadsheet_safe,
};
pub use watch::{AnchorConfig, Watch, WatchState, start_anchors, start_self_verify};

use auditlog_search::SearchEngine;
use auditlog_store::Store;

/// Limits and timeouts of the HTTP server (SPEC §2 limits are configurable).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body (SPEC: 10 MiB; larger is 413).
    pub max_body_bytes: usize,
    /// Largest single event (SPEC: 1 MiB).
    pub max_event_bytes: usize,
    /// Deepest JSON nesting inside one event (SPEC: 32).
    pub max_depth: usize,
    /// Most events in one request.
    pub max_batch_events: usize,
    /// Time a client has to send its request headers.
    pub header_read_timeout: Duration,
    /// Time a whole request (body included) may take.
    pub request_timeout: Duration,
    /// Peers whose `X-Forwarded-For` names the client (the event's default `ip`, the trail's).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Idle and absolute lifetime of sign-in sessions.
    pub session_limits: auditlog_store::SessionLimits,
    /// Cookies get `Secure` (set when serving TLS).
    pub secure_cookies: bool,
    /// Sign-in failures per account before it must wait, and the longest wait.
    pub throttle: crate::throttle::ThrottleConfig,
    /// How often a live stream checks that its credential still holds (revocations made by
    /// the CLI or another node are seen within this; this server's own wake streams at once).
    pub stream_recheck: Duration,
    /// Longest life of one live stream; the client resumes with `Last-Event-ID`.
    pub stream_max_lifetime: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 10 << 20,
            max_event_bytes: 1 << 20,
            max_depth: 32,
            max_batch_events: 100_000,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            trusted_proxies: Vec::new(),
            session_limits: auditlog_store::SessionLimits::default(),
            secure_cookies: false,
            throttle: crate::throttle::ThrottleConfig::default(),
            stream_recheck: Duration::from_secs(3),
            stream_max_lifetime: Duration::from_secs(3600),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub search: Arc<SearchEngine>,
    pub config: Arc<ServerConfig>,
    /// Counts acknowledged appends; live streams wait on it.
    pub appended: Arc<tokio::sync::watch::Sender<u64>>,
    /// Anchors and self-verification, for `/healthz`.
    pub watch: WatchState,
    /// Sign-in failures per account and per address.
    pub throttle: Arc<crate::throttle::Throttle>,
    /// Request counts and latencies for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Bumped on every revocation, disable, password change and sign-out made through this
    /// server: live streams check their credential again at once.
    pub credentials_changed: Arc<tokio::sync::watch::Sender<u64>>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, search: Arc<SearchEngine>, config: ServerConfig) -> AppState {
        let config_throttle = config.throttle;
        AppState {
            store,
            search,
            config: Arc::new(config),
            appended: Arc::new(tokio::sync::watch::Sender::new(0)),
            watch: WatchState::default(),
            throttle: Arc::new(crate::throttle::Throttle::new(config_throttle)),
            metrics: Arc::default(),
            credentials_changed: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }
}

impl AppState {
    /// Tell live streams that some credential may have ended.
    pub(crate) fn credentials_changed(&self) {
        self.credentials_changed
            .send_modify(|n| *n = n.wrapping_add(1));
    }
}

pub fn router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    routes::router(state)
        .merge(ui::router())
        .route_layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
}

/// A TLS acceptor from PEM files: a certificate chain and its private key (rustls, ring).
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use anyhow::Context as _;
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("read TLS certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parse TLS certificate {}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("no certificate in {}", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("read TLS private key {}", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not fit together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serve until `shutdown` resolves. Each connection gets hyper's header-read timeout (which
/// needs a timer, or it is silently off) and the peer address for events without `ip`. With
/// `tls`, every connection is TLS (the handshake has the same timeout as the headers).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let header_timeout = state.config.header_read_timeout;
    let app = router(state);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut connections = tokio::task::JoinSet::new();
    let mut stop = stop_rx.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop_rx.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                None => serve_connection(stream, peer, app, header_timeout, stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, peer, app, header_timeout, stop).await
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {peer}: {e}"),
                        Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                    }
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    // Let requests in flight finish (their events may already be acknowledged).
    let drain = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
    Ok(())
}

async fn serve_connection<IO>(
    io: IO,
    peer: SocketAddr,
    app: Router,
    header_timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
        request
            .extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(peer));
        app.clone().oneshot(request.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Some(header_timeout))
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("connection from {peer}: {e}");
            }
        }
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
