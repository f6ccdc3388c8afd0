//! `auditlog key show`: the tenant's verifier key in C2SP signed-note form.

use auditlog_store::Store as _;

use super::{TenantArg, open_shared};
use crate::Outcome;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the verifier key (`<name>+<hex key id>+<base64 key>`).
    Show(TenantArg),
}

pub fn run(ctx: &super::Ctx, command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Show(tenant) => {
            let store = open_shared(ctx)?;
            super::out(store.verifier_key(&tenant.parse()?)?)?;
            Ok(Outcome::Ok)
        }
    }
}
