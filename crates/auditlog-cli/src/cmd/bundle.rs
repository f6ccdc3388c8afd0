//! `auditlog verify --bundle FILE --key KEY`: check an NDJSON export offline, with nothing but
//! the log's verifier key. Each problem is reported with its line (and seq where known):
//!
//! - `bad_signature` — the checkpoint or the export note does not verify with the key, or they
//!   disagree (origin, tree size);
//! - `altered` — a line's event does not hash to its `leaf_hash`, or its proof does not lead
//!   to the checkpoint's root (edited event, edited hash, or an event from another tree);
//! - `missing` / `inserted` / `reordered` — the lines' seqs differ from the trailer's list,
//!   whose hash the export note signs: events are absent (named, at the line where they
//!   belong), a line is not part of the export (or repeats one), or lines are out of the
//!   listed order (the fewest lines that explain it; two adjacent lines swapped are one
//!   finding);
//! - `truncated` — lines are missing at the end;
//! - `malformed` — a line is not a JSON object of the expected shape.

use std::io::BufRead as _;

use anyhow::Context as _;
use auditlog_core::json::{JsonLimits, Value, parse};
use auditlog_ledger::merkle::{leaf_hash, verify_inclusion};
use auditlog_ledger::note::{NoteVerifier, open_checkpoint};
use auditlog_server::{EXPORT_NOTE_HEADER, decode_seqs};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

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
    /// The query the export note signs (what the export claims to hold all matches of).
    pub query: Option<String>,
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

/// Longest line read whole; a longer one is `malformed` (a line of a genuine export is an
/// event of at most a few MiB, the trailer a few bytes per line of the export).
const MAX_LINE_BYTES: usize = 256 << 20;

/// The lines of a file, one at a time, with their numbers (from 1): blank lines are skipped,
/// and a line longer than [`MAX_LINE_BYTES`] comes back empty (`too_long`), never held whole.
struct Lines {
    reader: std::io::BufReader<std::fs::File>,
    number: u64,
    buffer: Vec<u8>,
}

impl Lines {
    fn open(path: &std::path::Path) -> anyhow::Result<Lines> {
        let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
        Ok(Lines {
            reader: std::io::BufReader::with_capacity(1 << 20, file),
            number: 0,
            buffer: Vec::new(),
        })
    }

    /// The next non-blank line: its number, its bytes, and whether it was too long.
    fn next(&mut self) -> std::io::Result<Option<(u64, &[u8], bool)>> {
        loop {
            self.buffer.clear();
            let mut too_long = false;
            let mut any = false;
            loop {
                let available = self.reader.fill_buf()?;
                if available.is_empty() {
                    break;
                }
                any = true;
                let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
                    Some(end) => (&available[..end], Some(end + 1)),
                    None => (available, None),
                };
                if self.buffer.len() + chunk.len() > MAX_LINE_BYTES {
                    too_long = true;
                } else if !too_long {
                    self.buffer.extend_from_slice(chunk);
                }
                let used = done.unwrap_or(chunk.len());
                self.reader.consume(used);
                if done.is_some() {
                    break;
                }
            }
            if !any {
                return Ok(None);
            }
            self.number += 1;
            if too_long {
                self.buffer.clear();
                return Ok(Some((self.number, &self.buffer, true)));
            }
            if !self.buffer.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some((self.number, &self.buffer, false)));
            }
        }
    }
}

pub fn check(path: &std::path::Path, verifier: &NoteVerifier) -> anyhow::Result<BundleReport> {
    let read_error = |e: std::io::Error| anyhow::anyhow!("read {}: {e}", path.display());
    // First pass: the last non-blank line (the trailer), and how many lines come before it.
    let mut reader = Lines::open(path)?;
    // One buffer for the last line seen, reused: no allocation per line.
    let mut last: Option<(u64, Vec<u8>, bool)> = None;
    let mut event_lines = 0u64;
    while let Some((number, line, too_long)) = reader.next().map_err(read_error)? {
        match &mut last {
            Some((last_number, bytes, last_too_long)) => {
                event_lines += 1;
                *last_number = number;
                bytes.clear();
                bytes.extend_from_slice(line);
                *last_too_long = too_long;
            }
            None => last = Some((number, line.to_vec(), too_long)),
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
        max_event_bytes: MAX_LINE_BYTES,
    };
    let Some((last_line, last, _)) = last else {
        anyhow::bail!("{} is empty", path.display());
    };
    // The trailer: checkpoint, export note and the list of seqs.
    let trailer = parse(&last, &limits).ok();
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
    // header, origin, size, lines, seqs, query
    let manifest_fields: Option<Vec<String>> = manifest
        .as_deref()
        .map(|body| body.split('\n').map(str::to_owned).collect());
    // The seqs of the exported lines, in order: the trailer's list, whose SHA-256 the export
    // note signs.
    let list = trailer
        .as_ref()
        .and_then(|t| t.get("seqs"))
        .and_then(Value::as_str)
        .and_then(|text| STANDARD.decode(text).ok());
    let mut expected: Option<Vec<u64>> = None;
    let mut signed_query = None;
    if let Some(fields) = &manifest_fields {
        signed_query = fields
            .get(5)
            .and_then(|q| q.strip_prefix("q="))
            .and_then(|q| serde_json::from_str::<String>(q).ok());
        let stated_lines = fields.get(3).and_then(|n| n.parse::<u64>().ok());
        let signed_hash = fields.get(4).and_then(|h| STANDARD.decode(h).ok());
        if fields.len() < 6
            || fields[0] != EXPORT_NOTE_HEADER
            || stated_lines.is_none()
            || signed_hash.is_none()
            || signed_query.is_none()
        {
            problems.push(problem(
                "malformed",
                last_line,
                None,
                format!("the export note is not an {EXPORT_NOTE_HEADER} note"),
            ));
        } else {
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
            let stated = stated_lines.unwrap_or(0);
            if list.as_deref().map(|l| Sha256::digest(l).to_vec()) != signed_hash {
                problems.push(problem(
                    "bad_signature",
                    last_line,
                    None,
                    "the trailer's list of seqs is not the one the export note signs".into(),
                ));
            } else {
                expected = list
                    .as_deref()
                    .and_then(|l| decode_seqs(l, stated))
                    .filter(|seqs| seqs.len() as u64 == stated);
                if expected.is_none() {
                    problems.push(problem(
                        "malformed",
                        last_line,
                        None,
                        format!("the trailer's list of seqs does not hold {stated} seqs"),
                    ));
                }
            }
        }
    }
    // Second pass: every event line's event, leaf and proof; only its seq is kept.
    let mut parsed: Vec<Option<u64>> = Vec::new();
    let mut numbers: Vec<u64> = Vec::new();
    let mut reader = Lines::open(path)?;
    while let Some((line_no, line, too_long)) = reader.next().map_err(read_error)? {
        if line_no == last_line {
            break;
        }
        numbers.push(line_no);
        if too_long {
            problems.push(problem(
                "malformed",
                line_no,
                None,
                format!("the line is longer than {MAX_LINE_BYTES} bytes"),
            ));
            parsed.push(None);
            continue;
        }
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
        let Ok(Value::Object(members)) = parse(line, &limits) else {
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
        let proof: Option<Vec<[u8; 32]>> = match get("proof") {
            Some(Value::Array(hashes)) => hashes.iter().map(|h| decode_hash(Some(h))).collect(),
            _ => None,
        };
        let (Some(seq), Some(stated_leaf), Some(proof)) =
            (seq.filter(|&s| s >= 1), stated_leaf, proof)
        else {
            problems.push(problem(
                "malformed",
                line_no,
                seq,
                "missing seq, leaf_hash or proof".into(),
            ));
            parsed.push(None);
            continue;
        };
        // The stored event is the line without what the export added (SPEC §3, §5).
        let event = Value::Object(
            members
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "leaf_hash" | "proof"))
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
        parsed.push(Some(seq));
    }
    if let Some(expected) = &expected {
        problems.extend(compare_seqs(expected, &parsed, &numbers, last_line));
    }
    let count = event_lines;
    Ok(BundleReport {
        lines: count,
        tree_size: checkpoint.map_or(0, |cp| cp.size),
        query: signed_query,
        problems,
    })
}

/// The lines' seqs (`None`: a malformed line, already reported) against the list the export
/// note signs. `numbers` are the lines' numbers in the file, `last_line` the trailer's.
///
/// - `missing`: listed seqs no line holds, reported (a run at a time) at the line where they
///   belong, or `truncated` at the trailer when nothing listed follows them;
/// - `inserted`: a line whose seq is not listed, or a second line with the same seq;
/// - `reordered`: lines out of the listed order — those outside a longest run that keeps the
///   order (so one moved line is named, not everything it jumped over), and two adjacent
///   lines swapped are named together.
fn compare_seqs(
    expected: &[u64],
    found: &[Option<u64>],
    numbers: &[u64],
    last_line: u64,
) -> Vec<Problem> {
    use std::collections::HashMap;
    let place: HashMap<u64, usize> = expected
        .iter()
        .enumerate()
        .map(|(idx, &seq)| (seq, idx))
        .collect();
    let mut problems: Vec<(u64, Problem)> = Vec::new();
    // The first line holding each listed seq, by its place in the list.
    let mut line_of: Vec<Option<usize>> = vec![None; expected.len()];
    // (line index, place in the list) of the first occurrences, in file order.
    let mut kept: Vec<(usize, usize)> = Vec::new();
    for (at, seq) in found.iter().enumerate() {
        let Some(seq) = *seq else { continue };
        let line = numbers[at];
        match place.get(&seq) {
            Some(&idx) if line_of[idx].is_none() => {
                line_of[idx] = Some(at);
                kept.push((at, idx));
            }
            Some(_) => problems.push((
                line,
                Problem {
                    kind: "inserted",
                    line,
                    seq: Some(seq),
                    detail: format!("event {seq} is on an earlier line already"),
                },
            )),
            None => problems.push((
                line,
                Problem {
                    kind: "inserted",
                    line,
                    seq: Some(seq),
                    detail: format!("event {seq} is not part of this export"),
                },
            )),
        }
    }
    // Lines out of order: those outside a longest increasing run of list places.
    let in_order = longest_increasing(&kept);
    let out_of_order: Vec<usize> = (0..kept.len()).filter(|k| !in_order[*k]).collect();
    let mut named = std::collections::HashSet::new();
    for &k in &out_of_order {
        let (at, idx) = kept[k];
        if !named.insert(k) {
            continue;
        }
        // An adjacent pair swapped: one finding at the first of the two.
        let swapped = [k.wrapping_sub(1), k + 1].into_iter().find(|&other| {
            kept.get(other).is_some_and(|&(other_at, other_idx)| {
                other_at.abs_diff(at) == 1
                    && other_idx.abs_diff(idx) == 1
                    && (other_at < at) == (other_idx > idx)
            })
        });
        let line = numbers[at];
        if let Some(other) = swapped {
            named.insert(other);
            let (first, second) = (
                numbers[at.min(kept[other].0)],
                numbers[at.max(kept[other].0)],
            );
            problems.push((
                first,
                Problem {
                    kind: "reordered",
                    line: first,
                    seq: Some(
                        expected[if kept[other].0 < at {
                            kept[other].1
                        } else {
                            idx
                        }],
                    ),
                    detail: format!("lines {first} and {second} are swapped"),
                },
            ));
        } else {
            problems.push((
                line,
                Problem {
                    kind: "reordered",
                    line,
                    seq: Some(expected[idx]),
                    detail: format!(
                        "event {} is out of order: the export lists it as its line {}",
                        expected[idx],
                        idx + 1
                    ),
                },
            ));
        }
    }
    // Listed seqs no line holds, a run at a time, at the line of the next listed event
    // present (or the trailer).
    let mut idx = 0;
    while idx < expected.len() {
        if line_of[idx].is_some() {
            idx += 1;
            continue;
        }
        let start = idx;
        while idx < expected.len() && line_of[idx].is_none() {
            idx += 1;
        }
        let gone = &expected[start..idx];
        let shown: Vec<String> = gone.iter().take(5).map(u64::to_string).collect();
        let more = if gone.len() > 5 {
            format!(" and {} more", gone.len() - 5)
        } else {
            String::new()
        };
        let listed = format!("{}{more}", shown.join(", "));
        let problem = match line_of[idx..].iter().flatten().next() {
            Some(&at) => Problem {
                kind: "missing",
                line: numbers[at],
                seq: Some(gone[0]),
                detail: format!(
                    "{} event(s) are missing before this line: seq {listed}",
                    gone.len()
                ),
            },
            None => Problem {
                kind: "truncated",
                line: last_line,
                seq: Some(gone[0]),
                detail: format!("the last {} line(s) are missing: seq {listed}", gone.len()),
            },
        };
        problems.push((problem.line, problem));
    }
    problems.sort_by_key(|(line, _)| *line);
    problems.into_iter().map(|(_, problem)| problem).collect()
}

/// Which of `kept` (line, list place) lie on one longest run of increasing list places, in
/// O(n log n) (patience sorting with back links).
fn longest_increasing(kept: &[(usize, usize)]) -> Vec<bool> {
    // tails[len] = index into `kept` of the smallest last place of a run of length len + 1.
    let mut tails: Vec<usize> = Vec::new();
    let mut back: Vec<Option<usize>> = vec![None; kept.len()];
    for (k, &(_, place)) in kept.iter().enumerate() {
        let len = tails.partition_point(|&t| kept[t].1 < place);
        back[k] = len.checked_sub(1).map(|l| tails[l]);
        if len == tails.len() {
            tails.push(k);
        } else {
            tails[len] = k;
        }
    }
    let mut on_run = vec![false; kept.len()];
    let mut next = tails.last().copied();
    while let Some(k) = next {
        on_run[k] = true;
        next = back[k];
    }
    on_run
}
