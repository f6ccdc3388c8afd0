//! `auditlog user create|list|disable|set-password`: the people who sign in to the web UI.
//! Works beside a running server; disabling or a new password ends the person's sessions. As
//! the operator's own commands these are not recorded in the tenant's log; the same changes
//! through `/api/v1/users` are.

use std::io::BufRead as _;

use auditlog_store::people::{self, hash_password};
use auditlog_store::{Actor, Role, Store as _};

use super::TenantArg;
use crate::Outcome;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a person. Without --password-stdin a random password is made and printed (only
    /// it) on stdout, once.
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        /// The sign-in name (recorded as `user` of the person's actions).
        #[arg(long)]
        name: String,
        /// admin (people, tokens, settings; read, export, verify), auditor (read, export,
        /// verify) or viewer (read); the least, viewer, when not given.
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the tenant's people (never their passwords).
    List(TenantArg),
    /// Disable a person: their sessions end and they cannot sign in again.
    Disable {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        name: String,
    },
    /// Set a new password (read from stdin, or made and printed); the person's sessions end.
    SetPassword {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

/// The password from stdin, or a new random one that is printed.
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.strip_suffix('\n').unwrap_or(&line);
        let password = password.strip_suffix('\r').unwrap_or(password);
        people::check_password(password).map_err(anyhow::Error::msg)?;
        Ok((password.to_owned(), false))
    } else {
        Ok((new_password()?, true))
    }
}

/// 18 random bytes as base64url: 24 characters.
pub fn new_password() -> anyhow::Result<String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub fn run(ctx: &super::Ctx, command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Create {
            tenant,
            name,
            role,
            password_stdin,
        } => {
            let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
            if !people::valid_person_name(&name) {
                anyhow::bail!(
                    "invalid name {name:?}: use 1-64 characters of letters, digits, '-', '_', '.', ':' or '@'"
                );
            }
            let tenant = tenant.parse()?;
            let (password, generated) = password(password_stdin)?;
            let store = super::open_or_create(ctx, &tenant)?;
            store.create_person(
                &tenant,
                &name,
                role,
                &hash_password(&password)?,
                &Actor::operator(),
            )?;
            if generated {
                super::out(&password)?;
            }
            eprintln!("created {name} ({role}) in tenant {tenant}");
            Ok(Outcome::Ok)
        }
        Command::List(tenant) => {
            let store = super::open_shared(ctx)?;
            let list = store.list_people(&tenant.parse()?)?;
            if list.is_empty() {
                eprintln!("no people");
                return Ok(Outcome::Found);
            }
            super::out(format!(
                "{:<24} {:<8} {:<12} {:<12} status",
                "name", "role", "created", "signed in"
            ))?;
            let date = |t: i64| {
                time::OffsetDateTime::from_unix_timestamp(t)
                    .map(|d| d.date().to_string())
                    .unwrap_or_default()
            };
            for person in list {
                super::out(format!(
                    "{:<24} {:<8} {:<12} {:<12} {}",
                    person.name,
                    person.role.as_str(),
                    date(person.created_at),
                    person
                        .last_sign_in_at
                        .map(date)
                        .unwrap_or_else(|| "never".into()),
                    if person.disabled_at.is_some() {
                        "disabled"
                    } else {
                        "active"
                    }
                ))?;
            }
            Ok(Outcome::Ok)
        }
        Command::Disable { tenant, name } => {
            let store = super::open_shared(ctx)?;
            if store.disable_person(&tenant.parse()?, &name, &Actor::operator())? {
                eprintln!("disabled {name}");
                Ok(Outcome::Ok)
            } else {
                eprintln!("no enabled person named {name:?}");
                Ok(Outcome::Found)
            }
        }
        Command::SetPassword {
            tenant,
            name,
            password_stdin,
        } => {
            let (password, generated) = password(password_stdin)?;
            let store = super::open_shared(ctx)?;
            if store.set_password(
                &tenant.parse()?,
                &name,
                &hash_password(&password)?,
                &Actor::operator(),
            )? {
                if generated {
                    super::out(&password)?;
                }
                eprintln!("new password set for {name}; their sessions are ended");
                Ok(Outcome::Ok)
            } else {
                eprintln!("no person named {name:?}");
                Ok(Outcome::Found)
            }
        }
    }
}
