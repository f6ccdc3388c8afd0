//! `auditlog verify --bundle FILE --key KEY`: check an NDJSON export offline, with nothing but
//! the log's verifier key. Each problem is reported with its line (and seq where known):
//!
//! - `bad_signature` — the checkpoint or the export note does not verify with the key, or they
//!   disagree (origin, tree size);
//! - `altered` — a line's event does not hash to its `leaf_hash`, or its proof does not lead
//!   to the checkpoint's root (edited event, edited hash, or an event from another tree);
//! - `missing` / `inserted` / `reordered` — a line's `chain` does not follow from the line
//!   before: a line was removed, added or moved just before it (the kind is the verifier's
//!   best reading of the chain; the line is exact);
//! - `truncated` — lines are missing at the end (count or final chain differ from the note);
//! - `malformed` — a line is not a JSON object of the expected shape.

use std::io::BufRead as _;

use anyhow::Context as _;
use auditlog_core::json::{JsonLimits, Value, parse};
use auditlog_ledger::merkle::{leaf_hash, verify_inclusion};
use auditlog_ledger::note::{NoteVerifier, open_checkpoint};
use auditlog_server::{EXPORT_NOTE_HEADER, next_chain};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// One problem found in a bundle.
#[derive(Debug, Clone)]
pub struct Problem {
    pub kind: &'static str,
    pub line: u64,
    pub seq: Option<u64>,
    pub detail: String,
}

/// What checking a bundle found.
pub struct BundleReport {
    pub lines: u64,
    pub tree_size: u64,
    pub problems: Vec<Problem>,
}

/// The key as given, or read from a file of that name.
pub fn read_key(key: &str) -> anyhow::Result<NoteVerifier> {
    let text = match std::fs::read_to_string(key) {
        Ok(text) => text,
        Err(_) => key.to_owned(),
    };
    NoteVerifier::parse(text.trim()).map_err(|e| anyhow::anyhow!("--key: {e}"))
}

fn decode_hash(value: Option<&Value>) -> Option<[u8; 32]> {
    let bytes = STANDARD.decode(value?.as_str()?).ok()?;
    bytes.try_into().ok()
}

pub fn check(path: &std::path::Path, verifier: &NoteVerifier) -> anyhow::Result<BundleReport> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    // Non-blank lines with their line numbers in the file.
    let mut lines: Vec<String> = Vec::new();
    let mut numbers: Vec<u64> = Vec::new();
    for (idx, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("read {}", path.display()))?;
        if !line.trim().is_empty() {
            lines.push(line);
            numbers.push(idx as u64 + 1);
        }
    }
    let mut problems = Vec::new();
    let problem = |kind: &'static str, line: u64, seq: Option<u64>, detail: String| Problem {
        kind,
        line,
        seq,
        detail,
    };
    let limits = JsonLimits {
        max_depth: 64,
        max_event_bytes: 64 << 20,
    };
    let Some(last) = lines.pop() else {
        anyhow::bail!("{} is empty", path.display());
    };
    let last_line = numbers.pop().unwrap_or(1);
    // The trailer: checkpoint and export note.
    let trailer = parse(last.as_bytes(), &limits).ok();
    // `"checkpoint"` is a signed note, or null for the export of an empty log.
    let checkpoint_note = trailer.as_ref().and_then(|t| t.get("checkpoint"));
    let export_note = trailer
        .as_ref()
        .and_then(|t| t.get("export"))
        .and_then(Value::as_str);
    let (Some(checkpoint_note), Some(export_note)) = (checkpoint_note, export_note) else {
        anyhow::bail!(
            "line {last_line}: the last line is not {{\"checkpoint\": …, \"export\": …}}; not an auditlog NDJSON export"
        );
    };
    let checkpoint = match checkpoint_note {
        Value::String(note) => match open_checkpoint(verifier, note) {
            Ok(checkpoint) => Some(checkpoint),
            Err(e) => {
                problems.push(problem(
                    "bad_signature",
                    last_line,
                    None,
                    format!("the checkpoint does not verify: {e}"),
                ));
                None
            }
        },
        Value::Null => None,
        _ => anyhow::bail!("line {last_line}: \"checkpoint\" is neither a note nor null"),
    };
    let empty_log = matches!(checkpoint_note, Value::Null);
    let manifest = match verifier.verify(export_note) {
        Ok(body) => Some(body.to_owned()),
        Err(e) => {
            problems.push(problem(
                "bad_signature",
                last_line,
                None,
                format!("the export note does not verify: {e}"),
            ));
            None
        }
    };
    // header, origin, size, lines, chain, query
    let manifest_fields: Option<Vec<String>> = manifest
        .as_deref()
        .map(|body| body.split('\n').map(str::to_owned).collect());
    let mut stated_lines = None;
    let mut stated_chain = None;
    if let Some(fields) = &manifest_fields {
        if fields.len() < 6 || fields[0] != EXPORT_NOTE_HEADER {
            problems.push(problem(
                "malformed",
                last_line,
                None,
                "the export note is not an auditlog export v1 note".into(),
            ));
        } else {
            stated_lines = fields[3].parse::<u64>().ok();
            stated_chain = STANDARD
                .decode(&fields[4])
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok());
            if empty_log && (fields[2] != "0" || fields[1] != verifier.name()) {
                problems.push(problem(
                    "bad_signature",
                    last_line,
                    None,
                    "the bundle has no checkpoint, but its export note is not for an empty log"
                        .into(),
                ));
            }
            if let Some(cp) = &checkpoint
                && (fields[1] != cp.origin || fields[2] != cp.size.to_string())
            {
                problems.push(problem(
                    "bad_signature",
                    last_line,
                    None,
                    format!(
                        "the export note is for {} at size {}, the checkpoint for {} at size {}",
                        fields[1], fields[2], cp.origin, cp.size
                    ),
                ));
            }
        }
    }
    // First pass: every line's event, leaf and chain.
    let mut parsed: Vec<Option<([u8; 32], [u8; 32])>> = Vec::with_capacity(lines.len());
    for (idx, line) in lines.iter().enumerate() {
        let line_no = numbers[idx];
        if empty_log {
            problems.push(problem(
                "inserted",
                line_no,
                None,
                "the export of an empty log has no event lines".into(),
            ));
            parsed.push(None);
            continue;
        }
        let Ok(Value::Object(members)) = parse(line.as_bytes(), &limits) else {
            problems.push(problem(
                "malformed",
                line_no,
                None,
                "not a JSON object".into(),
            ));
            parsed.push(None);
            continue;
        };
        let get = |name: &str| members.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let seq = match get("seq") {
            Some(Value::Number(n)) => n.as_i64().and_then(|n| u64::try_from(n).ok()),
            _ => None,
        };
        let stated_leaf = decode_hash(get("leaf_hash"));
        let stated_chain = decode_hash(get("chain"));
        let proof: Option<Vec<[u8; 32]>> = match get("proof") {
            Some(Value::Array(hashes)) => hashes.iter().map(|h| decode_hash(Some(h))).collect(),
            _ => None,
        };
        let (Some(seq), Some(stated_leaf), Some(stated_chain), Some(proof)) =
            (seq.filter(|&s| s >= 1), stated_leaf, stated_chain, proof)
        else {
            problems.push(problem(
                "malformed",
                line_no,
                seq,
                "missing seq, leaf_hash, chain or proof".into(),
            ));
            parsed.push(None);
            continue;
        };
        // The stored event is the line without what the export added.
        let event = Value::Object(
            members
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "leaf_hash" | "proof" | "chain"))
                .cloned()
                .collect(),
        );
        let mut canonical = Vec::with_capacity(line.len());
        event.write_canonical(&mut canonical);
        let leaf = leaf_hash(&canonical);
        if leaf != stated_leaf {
            problems.push(problem(
                "altered",
                line_no,
                Some(seq),
                "the event does not hash to its leaf_hash".into(),
            ));
        } else if let Some(cp) = &checkpoint
            && verify_inclusion(seq - 1, cp.size, &leaf, &proof, &cp.root).is_err()
        {
            problems.push(problem(
                "altered",
                line_no,
                Some(seq),
                format!(
                    "its proof does not lead to the root of the tree of size {}",
                    cp.size
                ),
            ));
        }
        parsed.push(Some((stated_leaf, stated_chain)));
    }
    // Second pass: the chain. At a break, the neighbours tell which it is: line k swapped with
    // k+1 (k's chain follows from k+1's), line k added (k+1 follows from k-1), or lines
    // removed before k.
    let mut chain = [0u8; 32];
    let mut broken = false;
    let mut second_of_swap = false;
    let mut after_malformed = false;
    for idx in 0..parsed.len() {
        let Some((leaf, stated)) = parsed[idx] else {
            // Reported already; the chain picks up again from the next line's own value.
            after_malformed = true;
            continue;
        };
        if std::mem::take(&mut second_of_swap) {
            // The first of a swapped pair already carried the chain past both.
            continue;
        }
        if std::mem::take(&mut after_malformed) {
            chain = stated;
            continue;
        }
        if next_chain(&chain, &leaf) != stated {
            broken = true;
            let next = parsed.get(idx + 1).copied().flatten();
            let kind = match next {
                Some((_, next_chain_value)) if next_chain(&next_chain_value, &leaf) == stated => {
                    "reordered"
                }
                Some((next_leaf, next_stated)) if next_chain(&chain, &next_leaf) == next_stated => {
                    "inserted"
                }
                _ => "missing",
            };
            let line_no = numbers[idx];
            let next_no = numbers.get(idx + 1).copied().unwrap_or(line_no + 1);
            problems.push(problem(
                kind,
                line_no,
                None,
                match kind {
                    "reordered" => format!("lines {line_no} and {next_no} are swapped"),
                    "inserted" => "this line is not part of the export".into(),
                    _ => "lines were removed before this one".into(),
                },
            ));
            match kind {
                "reordered" => second_of_swap = true,
                // The chain goes on from the line before the stranger.
                "inserted" => continue,
                _ => {}
            }
        }
        chain = stated;
    }
    let count = lines.len() as u64;
    if let Some(stated) = stated_lines
        && stated != count
    {
        let kind = match (stated > count, broken) {
            (true, false) => "truncated",
            (true, true) => "missing",
            (false, _) => "inserted",
        };
        problems.push(problem(
            kind,
            last_line,
            None,
            format!("the export note counts {stated} lines, the file has {count}"),
        ));
    } else if let Some(stated) = stated_chain
        && stated != chain
    {
        problems.push(problem(
            "truncated",
            last_line,
            None,
            "the last line's chain is not the one the export note signs".into(),
        ));
    }
    Ok(BundleReport {
        lines: count,
        tree_size: checkpoint.map_or(0, |cp| cp.size),
        problems,
    })
}
