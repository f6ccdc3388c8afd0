//! One module per subcommand.

pub mod backup;
pub mod bundle;
pub mod export;
pub mod generate;
pub mod ingest;
pub mod key;
pub mod restore;
pub mod search;
pub mod serve;
pub mod show;
pub mod token;
pub mod user;
pub mod verify;

use std::path::PathBuf;

use anyhow::Context as _;
use auditlog_core::tenant::TenantId;
use auditlog_store::{SqliteStore, StoreOptions};

/// `--tenant T` as every local command takes it.
#[derive(clap::Args, Debug, Clone)]
pub struct TenantArg {
    /// Tenant whose log to use.
    #[arg(long, default_value = "default")]
    pub tenant: String,
}

impl TenantArg {
    pub fn parse(&self) -> anyhow::Result<TenantId> {
        Ok(TenantId::parse(&self.tenant)?)
    }
}

/// What every command gets from the global flags.
pub struct Ctx {
    pub data: PathBuf,
    pub key_dir: Option<PathBuf>,
}

impl Ctx {
    /// Store settings from the global flags (commands may override more).
    pub fn options(&self) -> StoreOptions {
        StoreOptions {
            key_dir: self.key_dir.clone(),
            ..StoreOptions::default()
        }
    }
}

/// Open the data directory beside a possibly running server (no lock, no writer).
pub fn open_shared(ctx: &Ctx) -> anyhow::Result<SqliteStore> {
    SqliteStore::open_shared(&ctx.data, ctx.options())
        .with_context(|| format!("open data directory {}", ctx.data.display()))
}

/// Open beside a running server, creating the data directory (and tenant) when there is none
/// yet (the first token or person of a fresh directory).
pub fn open_or_create(ctx: &Ctx, tenant: &TenantId) -> anyhow::Result<SqliteStore> {
    use auditlog_store::Store as _;
    match SqliteStore::open_shared(&ctx.data, ctx.options()) {
        Ok(store) => Ok(store),
        Err(auditlog_store::StoreError::NotFound(_)) => {
            let store = SqliteStore::open(&ctx.data, ctx.options())
                .with_context(|| format!("create data directory {}", ctx.data.display()))?;
            store.ensure_tenant(tenant)?;
            drop(store);
            Ok(SqliteStore::open_shared(&ctx.data, ctx.options())?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Machine output for `--format json`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// A progress bar on a terminal, nothing otherwise.
pub fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {human_pos}/{human_len} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Print a line to stdout; a closed pipe (`| head`) ends output quietly instead of panicking.
pub fn out(line: impl std::fmt::Display) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{line}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => Ok(other?),
    }
}
