//! `auditlog token create|list|revoke`: works beside a running server (no directory lock).
//! The operator's own commands are not recorded in the tenant's log (those through the API are).

use auditlog_store::{Actor, Scopes, Store as _};

use super::TenantArg;
use crate::Outcome;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a token and print it (only it) on stdout; it is shown once.
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        /// Comma-separated: ingest, read, admin.
        #[arg(long, default_value = "ingest,read")]
        scopes: String,
        /// Name recorded as the actor of the token's actions.
        #[arg(long)]
        name: String,
    },
    /// List the tenant's tokens (never the secrets).
    List(TenantArg),
    /// Revoke a token by name; it fails from the next request on.
    Revoke {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        name: String,
    },
}

pub fn run(ctx: &super::Ctx, command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Create {
            tenant,
            scopes,
            name,
        } => {
            let scopes = Scopes::parse(&scopes).map_err(anyhow::Error::msg)?;
            let tenant = tenant.parse()?;
            let store = super::open_or_create(ctx, &tenant)?;
            let token = store.create_token(&tenant, &name, scopes, &Actor::operator())?;
            super::out(&token)?;
            Ok(Outcome::Ok)
        }
        Command::List(tenant) => {
            let store = super::open_shared(ctx)?;
            let tokens = store.list_tokens(&tenant.parse()?)?;
            if tokens.is_empty() {
                eprintln!("no tokens");
                return Ok(Outcome::Found);
            }
            super::out(format!(
                "{:<24} {:<20} {:<12} {:<12} status",
                "name", "scopes", "created", "last used"
            ))?;
            for token in tokens {
                let date = |t: i64| {
                    time::OffsetDateTime::from_unix_timestamp(t)
                        .map(|d| d.date().to_string())
                        .unwrap_or_default()
                };
                super::out(format!(
                    "{:<24} {:<20} {:<12} {:<12} {}",
                    token.name,
                    token.scopes.to_string(),
                    date(token.created_at),
                    token
                        .last_used_at
                        .map(date)
                        .unwrap_or_else(|| "never".into()),
                    if token.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                ))?;
            }
            Ok(Outcome::Ok)
        }
        Command::Revoke { tenant, name } => {
            let store = super::open_shared(ctx)?;
            if store.revoke_token(&tenant.parse()?, &name, &Actor::operator())? {
                eprintln!("revoked {name}");
                Ok(Outcome::Ok)
            } else {
                eprintln!("no active token named {name:?}");
                Ok(Outcome::Found)
            }
        }
    }
}
