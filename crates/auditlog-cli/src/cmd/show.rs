//! `auditlog show SEQ`: one event with its diff.

use auditlog_store::Store as _;

use super::{Format, TenantArg, open_shared};
use crate::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// The event's seq.
    seq: u64,
    #[command(flatten)]
    tenant: TenantArg,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(ctx: &super::Ctx, args: Args) -> anyhow::Result<Outcome> {
    let store = open_shared(ctx)?;
    let Some(event) = store.event(&args.tenant.parse()?, args.seq)? else {
        eprintln!("event {} not found", args.seq);
        return Ok(Outcome::Found);
    };
    let body = auditlog_server::event_json(&event).map_err(anyhow::Error::msg)?;
    match args.format {
        Format::Json => super::out(format!("{}", serde_json::Value::Object(body)))?,
        Format::Text => super::out(serde_json::to_string_pretty(&body)?)?,
    }
    Ok(Outcome::Ok)
}
