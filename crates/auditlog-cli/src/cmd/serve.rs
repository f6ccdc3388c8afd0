//! `auditlog serve`: the HTTP server on the data directory. On a fresh directory it creates
//! the default tenant, its signing key, an admin person (password printed once) and an admin
//! token printed once; `--demo` loads generated sample events into an empty log.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use auditlog_core::generate::{GenerateOptions, Generator};
use auditlog_core::json::{JsonLimits, parse};
use auditlog_core::tenant::TenantId;
use auditlog_search::{SearchEngine, SearchOptions};
use auditlog_server::{
    AnchorConfig, AppState, ServerConfig, WatchState, start_anchors, start_self_verify,
};
use auditlog_store::people;
use auditlog_store::{
    Actor, Role, Scopes, SessionLimits, SqliteStore, Store, StoreOptions, prepare_event,
};

use crate::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "AUDITLOG_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Load generated sample events into an empty default log.
    #[arg(long)]
    demo: bool,
    /// How many sample events `--demo` loads.
    #[arg(long, default_value_t = 10_000)]
    demo_events: u64,
    /// Most time between two signed checkpoints while events arrive, in milliseconds.
    #[arg(long, env = "AUDITLOG_CHECKPOINT_INTERVAL_MS", default_value_t = 1000)]
    checkpoint_interval_ms: u64,
    /// Largest request body in bytes.
    #[arg(long, env = "AUDITLOG_MAX_BODY_BYTES", default_value_t = 10 << 20)]
    max_body_bytes: usize,
    /// Largest single event in bytes, as sent (a larger one is a 400 naming its index); at
    /// most 16 MiB, so that its stored form stays within what every reader accepts.
    #[arg(long, env = "AUDITLOG_MAX_EVENT_BYTES", default_value_t = 1 << 20,
          value_parser = clap::value_parser!(u64).range(2..=(16 << 20)))]
    max_event_bytes: u64,
    /// Deepest nesting of objects and arrays in an event (the event object is depth 1); at
    /// most 64, the depth every reader of stored events accepts.
    #[arg(long, env = "AUDITLOG_MAX_DEPTH", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    max_depth: u64,
    /// Copy every signed checkpoint into this directory (outside the data directory), for
    /// `auditlog verify --anchors DIR`.
    #[arg(long, env = "AUDITLOG_ANCHOR_DIR")]
    anchor_dir: Option<std::path::PathBuf>,
    /// POST every signed checkpoint (text/plain) to this URL, e.g. a webhook.
    #[arg(long, env = "AUDITLOG_ANCHOR_URL")]
    anchor_url: Option<String>,
    /// Serve Prometheus metrics at `GET /metrics` on this address (off unless given).
    #[arg(long, env = "AUDITLOG_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Verify every log this often, in seconds (0: never); the result is in /healthz.
    #[arg(long, env = "AUDITLOG_VERIFY_EVERY_SECS", default_value_t = 3600)]
    verify_every_secs: u64,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "AUDITLOG_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "AUDITLOG_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For header
    /// names the client. Nobody else's is believed.
    #[arg(long, env = "AUDITLOG_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxy: Vec<String>,
    /// A sign-in session unused this long ends, in seconds.
    #[arg(long, env = "AUDITLOG_SESSION_IDLE_SECS", default_value_t = 1800)]
    session_idle_secs: i64,
    /// Keep no search index: events are recorded, proven, shown by seq and streamed live, but
    /// searches, facets, histograms and exports answer 503 `search_disabled`. For a node that
    /// only records, or to give ingest every core; a later start without it builds the index.
    /// The variable takes true/false, 1/0, yes/no or on/off.
    #[arg(long, env = "AUDITLOG_NO_SEARCH_INDEX", value_parser = clap::builder::BoolishValueParser::new())]
    no_search_index: bool,
    /// A sign-in session ends this long after sign-in, in seconds.
    #[arg(long, env = "AUDITLOG_SESSION_MAX_SECS", default_value_t = 43200)]
    session_max_secs: i64,
    /// Longest life of one live stream (`/api/v1/stream`), in seconds; the client resumes
    /// with Last-Event-ID.
    #[arg(long, env = "AUDITLOG_STREAM_MAX_SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    stream_max_secs: u64,
}

/// Addresses or networks (`10.0.0.1`, `10.0.0.0/8`, `::1`).
fn parse_proxies(list: &[String]) -> anyhow::Result<Vec<ipnet::IpNet>> {
    list.iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| anyhow::anyhow!("--trusted-proxy {s:?} is not an address or network"))
        })
        .collect()
}

pub fn run(ctx: &super::Ctx, args: Args) -> anyhow::Result<Outcome> {
    let data = ctx.data.as_path();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AUDITLOG_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let fresh = !data.join("auditlog.db").exists();
    let trusted_proxies = parse_proxies(&args.trusted_proxy)?;
    if args.session_idle_secs < 60 || args.session_max_secs < args.session_idle_secs {
        anyhow::bail!("sessions need --session-idle-secs >= 60 and --session-max-secs >= it");
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(auditlog_server::tls_acceptor(cert, key)?),
        _ => None,
    };
    let watch = WatchState::default();
    let anchors = AnchorConfig {
        dir: args.anchor_dir.clone(),
        url: args.anchor_url.clone(),
    };
    let on_checkpoint = (!anchors.is_empty()).then(|| start_anchors(anchors, watch.clone()));
    let options = StoreOptions {
        checkpoint_interval: Duration::from_millis(args.checkpoint_interval_ms.max(10)),
        on_checkpoint,
        ..ctx.options()
    };
    let store = Arc::new(
        SqliteStore::open(data, options)
            .with_context(|| format!("open data directory {}", data.display()))?,
    );
    let tenant = TenantId::default_tenant();
    store.ensure_tenant(&tenant)?;
    if fresh {
        let token = store.create_token(&tenant, "admin", Scopes::all(), &Actor::operator())?;
        let password = super::user::new_password()?;
        store.create_person(
            &tenant,
            "admin",
            Role::Admin,
            &people::hash_password(&password)?,
            &Actor::operator(),
        )?;
        println!(
            "auditlog: created data directory {}\n\
             auditlog: sign in to the web UI as tenant \"default\", user \"admin\", password (shown once):\n{password}\n\
             auditlog: admin token for tenant \"default\" (for the API; shown once, keep it):\n{token}",
            data.display()
        );
    }
    if args.demo && store.tree_size(&tenant)? == 0 {
        load_demo(store.as_ref(), &tenant, args.demo_events)?;
        eprintln!("auditlog: loaded {} sample events", args.demo_events);
    }
    let config = ServerConfig {
        max_body_bytes: args.max_body_bytes,
        max_event_bytes: args.max_event_bytes as usize,
        max_depth: args.max_depth as usize,
        trusted_proxies,
        session_limits: SessionLimits {
            idle_secs: args.session_idle_secs,
            absolute_secs: args.session_max_secs,
        },
        secure_cookies: tls.is_some(),
        stream_max_lifetime: Duration::from_secs(args.stream_max_secs),
        ..ServerConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("auditlog-http")
        .build()?;
    let store_dyn: Arc<dyn Store> = store.clone();
    let search = Arc::new(
        SearchEngine::open(
            store_dyn.clone(),
            &data.join("index"),
            SearchOptions {
                enabled: !args.no_search_index,
                ..SearchOptions::default()
            },
        )
        .context("open the search index")?,
    );
    if args.verify_every_secs > 0 {
        start_self_verify(
            store_dyn.clone(),
            Duration::from_secs(args.verify_every_secs),
            watch.clone(),
        );
    }
    let mut state = AppState::new(store_dyn, search.clone(), config);
    state.watch = watch;
    let metrics_source = auditlog_server::metrics::MetricsSource {
        metrics: state.metrics.clone(),
        store: state.store.clone(),
        search: search.clone(),
        watch: state.watch.clone(),
        index_enabled: !args.no_search_index,
    };
    runtime.block_on(async {
        if let Some(listen) = &args.metrics_listen {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listen for metrics on {listen}"))?;
            eprintln!(
                "auditlog: metrics on http://{}/metrics",
                listener.local_addr()?
            );
            tokio::spawn(auditlog_server::metrics::serve(listener, metrics_source));
        }
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        eprintln!(
            "auditlog: listening on {}://{addr} (data {})",
            if tls.is_some() { "https" } else { "http" },
            data.display()
        );
        auditlog_server::serve(listener, state, tls, shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    // Commit what is queued and sign a last checkpoint; commit the index.
    search.shutdown();
    store.close();
    eprintln!("auditlog: stopped");
    Ok(Outcome::Ok)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

/// Sample events ending about now, so a newcomer sees a recent, living trail.
fn load_demo(store: &dyn Store, tenant: &TenantId, count: u64) -> anyhow::Result<()> {
    let received = auditlog_store::now();
    let now = received.unix_nanos() / 1_000_000_000;
    // Gaps are random, so the span varies: start early enough that no event lands in the future.
    let mean_gap_ms = 10_000;
    let span_secs = count as i64 * mean_gap_ms as i64 / 1000;
    let mut generator = Generator::new(GenerateOptions {
        seed: 42,
        start_unix_secs: now - span_secs - span_secs / 3 - 3600,
        mean_gap_ms,
    });
    let peer = std::net::IpAddr::from([127, 0, 0, 1]);
    let mut batch = Vec::with_capacity(1000);
    let mut line = String::new();
    for _ in 0..count {
        line.clear();
        generator.write_next(&mut line);
        let value = parse(line.as_bytes(), &JsonLimits::default())
            .map_err(|e| anyhow::anyhow!("generated event does not parse: {e}"))?;
        batch.push(
            prepare_event(value, received, peer)
                .map_err(|e| anyhow::anyhow!("generated event is invalid: {}", e.message))?,
        );
        if batch.len() == 1000 {
            store.append_blocking(tenant, std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        store.append_blocking(tenant, batch)?;
    }
    Ok(())
}
