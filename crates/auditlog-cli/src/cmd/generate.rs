//! `auditlog generate`: deterministic sample events (same bytes for the same count and seed).

use std::io::Write as _;

use auditlog_core::generate::{GenerateOptions, Generator};

use crate::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// How many events.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut generator = Generator::new(GenerateOptions {
        seed: args.seed,
        ..GenerateOptions::default()
    });
    let mut line = String::with_capacity(4096);
    for _ in 0..args.count {
        line.clear();
        generator.write_next(&mut line);
        line.push('\n');
        match out.write_all(line.as_bytes()) {
            Ok(()) => {}
            // `generate | head` is fine.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(Outcome::Ok),
            Err(e) => return Err(e.into()),
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(Outcome::Ok),
    }
}
