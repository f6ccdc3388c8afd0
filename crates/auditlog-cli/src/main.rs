//! The `auditlog` binary: one file per subcommand under `cmd/`, each a thin wrapper that parses
//! its arguments and calls the store, server or core. Exit codes (SPEC §6): 0 ok, 1 nothing
//! found or integrity problems found, 2 error.

mod cmd;

// Ingest allocates many small strings per event; glibc's malloc was ~15% of server CPU in
// profiles of the ingest benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "auditlog",
    version,
    about = "A tamper-evident audit trail",
    max_term_width = 100
)]
struct Cli {
    /// Data directory of the embedded store.
    #[arg(
        long,
        global = true,
        env = "AUDITLOG_DATA",
        default_value = "./auditlog-data"
    )]
    data: PathBuf,
    /// Directory of the tenants' signing keys (`<tenant>.key`), instead of `<data>/keys`.
    #[arg(long, global = true, env = "AUDITLOG_KEY_DIR")]
    key_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server on the data directory.
    Serve(cmd::serve::Args),
    /// Append NDJSON events from a file or stdin, over HTTP (--url) or into --data.
    Ingest(cmd::ingest::Args),
    /// Search the log with the query language; a table on a terminal, or JSON lines or CSV.
    Search(cmd::search::SearchArgs),
    /// Print new events as they are stored, optionally only those matching a query.
    Tail(cmd::search::TailArgs),
    /// Rebuild a tenant's search index from the log (with no server running).
    Reindex(cmd::search::ReindexArgs),
    /// Every matching event as CSV or as NDJSON with proofs (checkable offline).
    Export(cmd::export::Args),
    /// Print one event with its diff.
    Show(cmd::show::Args),
    /// Recompute the log from storage and report every integrity problem.
    Verify(cmd::verify::Args),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(cmd::token::Command),
    /// Create, list and disable the people who sign in to the web UI.
    #[command(subcommand)]
    User(cmd::user::Command),
    /// Signing keys.
    #[command(subcommand)]
    Key(cmd::key::Command),
    /// Write realistic sample events as NDJSON to stdout.
    Generate(cmd::generate::Args),
    /// Copy the data directory consistently while a server runs, with a manifest.
    Backup(cmd::backup::Args),
    /// Bring a backup back as a new data directory (--data).
    Restore(cmd::restore::Args),
}

/// What a command reports besides success.
pub enum Outcome {
    Ok,
    /// Nothing found, or integrity problems found (exit 1).
    Found,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = cmd::Ctx {
        data: cli.data,
        key_dir: cli.key_dir,
    };
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(&ctx, args),
        Command::Ingest(args) => cmd::ingest::run(&ctx, args),
        Command::Search(args) => cmd::search::search(&ctx, args),
        Command::Tail(args) => cmd::search::tail(&ctx, args),
        Command::Reindex(args) => cmd::search::reindex(&ctx, args),
        Command::Export(args) => cmd::export::run(&ctx, args),
        Command::Show(args) => cmd::show::run(&ctx, args),
        Command::Verify(args) => cmd::verify::run(&ctx, args),
        Command::Token(command) => cmd::token::run(&ctx, command),
        Command::User(command) => cmd::user::run(&ctx, command),
        Command::Key(command) => cmd::key::run(&ctx, command),
        Command::Generate(args) => cmd::generate::run(args),
        Command::Backup(args) => cmd::backup::run(&ctx, args),
        Command::Restore(args) => cmd::restore::run(&ctx, args),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Found) => ExitCode::from(1),
        Err(e) => {
            eprintln!("auditlog: {e:#}");
            ExitCode::from(2)
        }
    }
}
