//! `verify`: recompute a tenant's log from storage and report every problem as a finding.
//!
//! What is checked, against what:
//! - every stored checkpoint's signature and origin, with the tenant's verifier key;
//! - every stored event: its canonical bytes are hashed (RFC 9162 leaf hash) and compared with
//!   the leaf in the stored level-0 tiles; a row that holds another seq's event is `reordered`,
//!   any other difference `altered`; absent rows are `missing` (`truncated` when the newest are
//!   gone), rows beyond the tree `inserted`;
//! - the tree: a Merkle frontier over the tile leaves is compared with every signed
//!   checkpoint root, and every upper tile is recomputed from the leaves below it.
//!
//! Corruption is data: it becomes a finding, never a panic or an error. Errors are reserved for
//! failing to read at all.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::mpsc;

use auditlog_core::tenant::TenantId;
use auditlog_ledger::Hash;
use auditlog_ledger::merkle;
use auditlog_ledger::note::{NoteSigner, NoteVerifier, open_checkpoint};
use auditlog_ledger::tiles::{TileId, TileWriter};
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;
use auditlog_core::event::{Timestamp, splice_event};

use crate::codec::{Decoder, split_plain};

/// Findings beyond this many are counted, not listed.
const MAX_FINDINGS: usize = 1000;
/// Leaves per unit of work handed to a verify worker.
const CHUNK: u64 = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    Altered,
    Missing,
    Inserted,
    Reordered,
    Truncated,
    BadSignature,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Altered => "altered",
            FindingKind::Missing => "missing",
            FindingKind::Inserted => "inserted",
            FindingKind::Reordered => "reordered",
            FindingKind::Truncated => "truncated",
            FindingKind::BadSignature => "bad_signature",
        }
    }
}

/// The kind in words, as SPEC §5 names it ("bad signature"); [`FindingKind::as_str`] is the
/// code JSON carries (`bad_signature`). [`kind_in_words`] does the same for any code.
impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&kind_in_words(self.as_str()))
    }
}

/// A finding's code as text output words it: `bad_signature` → `bad signature`.
pub fn kind_in_words(code: &str) -> String {
    code.replace('_', " ")
}

/// One problem: its kind, the seq it concerns (or the tree size, for checkpoints), and words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub seq: Option<u64>,
    pub detail: String,
}

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub tenant: String,
    pub tree_size: u64,
    pub events_checked: u64,
    pub checkpoints_checked: u64,
    pub latest_checkpoint: Option<u64>,
    pub findings: Vec<Finding>,
    /// Findings not listed because there were more than MAX_FINDINGS.
    pub more_findings: u64,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty() && self.more_findings == 0
    }

    fn add(&mut self, kind: FindingKind, seq: Option<u64>, detail: String) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(Finding { kind, seq, detail });
        } else {
            self.more_findings += 1;
        }
    }
}

struct Chunk {
    index: u64,
    lo: u64,
    hi: u64,
    /// Checkpoint sizes in (lo, hi] that end inside a tile: their partial-tile hashes are
    /// computed by the worker.
    partial_checkpoints: Vec<u64>,
    /// (seq, received_at, dict, range of its body in `bodies`).
    rows: Vec<(u64, i64, i64, std::ops::Range<usize>)>,
    /// The chunk's bodies back to back: one allocation per chunk, not per event.
    bodies: Vec<u8>,
    leaves: Vec<Option<Hash>>,
}

struct ChunkResult {
    index: u64,
    lo: u64,
    hi: u64,
    /// Roots of the chunk's complete tiles (level-8 nodes), up to the first leaf that is
    /// neither stored in a tile nor recomputable from its row.
    tile_roots: Vec<Hash>,
    /// That leaf, if any (1-based seq).
    broken_at: Option<u64>,
    /// For each partial checkpoint: the perfect subtree roots of its last, partial tile.
    partials: Vec<(u64, Vec<Hash>)>,
    row_present: Vec<bool>,
    mismatches: Vec<u64>,
    undecodable: Vec<(u64, String)>,
}

/// `signer`: the tenant's key and checkpoint origin, or None when its key file (`key_path`) is
/// gone, which makes every checkpoint unverifiable.
pub(crate) fn verify_sqlite(
    conn: &Connection,
    tenant: &TenantId,
    signer: Option<(&NoteSigner, &str)>,
    key_path: &std::path::Path,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<VerifyReport, StoreError> {
    // One read transaction: a consistent snapshot even while a server appends.
    conn.execute_batch("BEGIN")?;
    let result = verify_in_snapshot(conn, tenant, signer, key_path, progress);
    let _ = conn.execute_batch("COMMIT");
    result
}

fn verify_in_snapshot(
    conn: &Connection,
    tenant: &TenantId,
    signer: Option<(&NoteSigner, &str)>,
    key_path: &std::path::Path,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport {
        tenant: tenant.to_string(),
        ..VerifyReport::default()
    };
    let row: Option<(i64, i64)> = conn
        .query_row(
            "SELECT id, tree_size FROM tenants WHERE name = ?1",
            params![tenant.as_str()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let Some((tenant_id, tree_size)) = row else {
        return Ok(report);
    };
    let tree_size = tree_size.max(0) as u64;
    report.tree_size = tree_size;

    // Checkpoints: signature, origin and size line must all hold.
    let verifier = match signer {
        Some((signer, origin)) => Some((
            NoteVerifier::parse(&signer.verifier_key())
                .map_err(|e| StoreError::Corrupted(format!("verifier key: {e}")))?,
            origin,
        )),
        None => None,
    };
    let mut checkpoints: Vec<(u64, Hash)> = Vec::new();
    {
        let mut stmt =
            conn.prepare("SELECT size, note FROM checkpoints WHERE tenant = ?1 ORDER BY size")?;
        let rows = stmt.query_map(params![tenant_id], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (size, note) = row?;
            let size = size.max(0) as u64;
            report.checkpoints_checked += 1;
            let Some((verifier, origin)) = &verifier else {
                report.add(
                    FindingKind::BadSignature,
                    Some(size),
                    format!(
                        "checkpoint of size {size} cannot be checked: the signing key {} is missing",
                        key_path.display()
                    ),
                );
                continue;
            };
            match open_checkpoint(verifier, &note) {
                Ok(cp) if cp.size == size && cp.origin == *origin => {
                    checkpoints.push((size, cp.root))
                }
                Ok(cp) => report.add(
                    FindingKind::BadSignature,
                    Some(size),
                    format!(
                        "checkpoint stored for size {size} is a valid note for {} size {}",
                        cp.origin, cp.size
                    ),
                ),
                Err(e) => report.add(
                    FindingKind::BadSignature,
                    Some(size),
                    format!("checkpoint of size {size} does not verify: {e}"),
                ),
            }
        }
    }
    report.latest_checkpoint = checkpoints.last().map(|(size, _)| *size);
    if let Some(&(size, _)) = checkpoints.last()
        && size > tree_size
    {
        report.add(
            FindingKind::Truncated,
            Some(tree_size + 1),
            format!(
                "a checkpoint of size {size} was signed, but the log now holds {tree_size} events"
            ),
        );
    }

    let dictionaries: Arc<HashMap<i64, Arc<Vec<u8>>>> = {
        let mut stmt = conn.prepare("SELECT id, data FROM dicts WHERE tenant = ?1")?;
        let rows = stmt.query_map(params![tenant_id], |row| {
            Ok((row.get::<_, i64>(0)?, Arc::new(row.get::<_, Vec<u8>>(1)?)))
        })?;
        Arc::new(rows.collect::<Result<HashMap<i64, Arc<Vec<u8>>>, _>>()?)
    };

    let n_workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let n_chunks = tree_size.div_ceil(CHUNK);
    // The workers hash each tile's 256 leaves to its root; here only the tree above the tiles
    // is built: `upper` makes the tiles of level 1 and up (its level l is our level l+1), and
    // `roots8` the frontier over tile roots, which with a partial tile gives any tree head.
    let mut upper = TileWriter::new();
    let mut roots8 = merkle::Frontier::new();
    // The empty tree's head is the hash of nothing (RFC 9162); a checkpoint of size 0 is
    // checked against it like any other.
    let mut computed_roots: HashMap<u64, Hash> = HashMap::from([(0, merkle::empty_root())]);
    let mut upper_tiles: BTreeMap<(u8, u64), Vec<u8>> = BTreeMap::new();
    let mut frontier_broken_at: Option<u64> = None;
    let mut mismatches: Vec<u64> = Vec::new();
    let mut missing: Vec<(u64, u64)> = Vec::new();

    std::thread::scope(|scope| -> Result<(), StoreError> {
        let (work_tx, work_rx) = mpsc::sync_channel::<Chunk>(n_workers * 2);
        let work_rx = Arc::new(std::sync::Mutex::new(work_rx));
        let (done_tx, done_rx) = mpsc::sync_channel::<ChunkResult>(n_workers * 2);
        for _ in 0..n_workers {
            let work_rx = work_rx.clone();
            let done_tx = done_tx.clone();
            let dictionaries = dictionaries.clone();
            let tenant = tenant.as_str();
            scope.spawn(move || {
                let mut decoder = Decoder::default();
                loop {
                    let chunk = {
                        let guard = work_rx.lock().unwrap_or_else(|e| e.into_inner());
                        guard.recv()
                    };
                    let Ok(chunk) = chunk else { return };
                    let result = check_chunk(chunk, tenant, &dictionaries, &mut decoder);
                    if done_tx.send(result).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);

        // Feed chunks from this thread (it owns the connection) while draining results in order.
        let mut pending: BTreeMap<u64, ChunkResult> = BTreeMap::new();
        let mut next_result = 0u64;
        let mut sent = 0u64;
        let mut consume = |result: ChunkResult,
                           report: &mut VerifyReport|
         -> Result<(), StoreError> {
            pending.insert(result.index, result);
            while let Some(result) = pending.remove(&next_result) {
                next_result += 1;
                for (seq, why) in &result.undecodable {
                    report.add(FindingKind::Altered, Some(*seq), why.clone());
                }
                mismatches.extend(&result.mismatches);
                for offset in 0..(result.hi - result.lo) as usize {
                    let seq = result.lo + offset as u64 + 1;
                    if !result.row_present[offset] {
                        match missing.last_mut() {
                            Some((_, end)) if *end + 1 == seq => *end = seq,
                            _ => missing.push((seq, seq)),
                        }
                    }
                }
                if frontier_broken_at.is_none() {
                    let first_tile = result.lo / 256;
                    let mut partials = result.partials.iter().peekable();
                    for (k, root) in result.tile_roots.iter().enumerate() {
                        let tile = first_tile + k as u64;
                        while let Some((size, hashes)) = partials.next_if(|(n, _)| n / 256 == tile)
                        {
                            add_partial_root(&roots8, *size, hashes, &mut computed_roots);
                        }
                        roots8.push(*root);
                        upper.append(*root);
                        computed_roots.insert(roots8.size() * 256, roots8.root());
                    }
                    let complete = first_tile + result.tile_roots.len() as u64;
                    for (size, hashes) in partials {
                        if size / 256 == complete {
                            add_partial_root(&roots8, *size, hashes, &mut computed_roots);
                        }
                    }
                    frontier_broken_at = result.broken_at;
                    for (tile, data) in upper.take_dirty() {
                        upper_tiles.insert((tile.level + 1, tile.index), data);
                    }
                }
                report.events_checked = result.hi;
                progress(result.hi, tree_size);
            }
            Ok(())
        };
        while sent < n_chunks {
            let lo = sent * CHUNK;
            let hi = ((sent + 1) * CHUNK).min(tree_size);
            let mut chunk = read_chunk(conn, tenant_id, sent, lo, hi)?;
            chunk.partial_checkpoints = checkpoints
                .iter()
                .map(|(size, _)| *size)
                .filter(|size| *size > lo && *size <= hi && size % 256 != 0)
                .collect();
            // Keep the pipeline full without blocking on a full result channel.
            while let Ok(result) = done_rx.try_recv() {
                consume(result, &mut report)?;
            }
            if work_tx.send(chunk).is_err() {
                return Err(StoreError::Corrupted("verify worker stopped".into()));
            }
            sent += 1;
        }
        drop(work_tx);
        while let Ok(result) = done_rx.recv() {
            consume(result, &mut report)?;
        }
        Ok(())
    })?;

    for (size, root) in &checkpoints {
        if let Some(computed) = computed_roots.get(size)
            && computed != root
        {
            report.add(
                FindingKind::Altered,
                Some(*size),
                format!("the stored tree of size {size} does not match its signed checkpoint"),
            );
        }
    }
    if let Some(seq) = frontier_broken_at {
        report.add(
            FindingKind::Missing,
            Some(seq),
            format!("neither event {seq} nor its leaf hash is stored; the tree cannot be recomputed past it"),
        );
    }
    for (start, end) in missing {
        if end == tree_size {
            report.add(
                FindingKind::Truncated,
                Some(start),
                format!("the newest events {start}..{end} are gone (the tree holds {tree_size})"),
            );
        } else if start == end {
            report.add(
                FindingKind::Missing,
                Some(start),
                format!("event {start} is missing"),
            );
        } else {
            report.add(
                FindingKind::Missing,
                Some(start),
                format!("events {start}..{end} are missing"),
            );
        }
    }

    // Rows beyond the tree were never acknowledged by this log.
    {
        let mut stmt = conn.prepare(
            "SELECT seq FROM events WHERE tenant = ?1 AND (seq > ?2 OR seq < 1) ORDER BY seq LIMIT 1001",
        )?;
        let rows = stmt.query_map(params![tenant_id, tree_size as i64], |row| {
            row.get::<_, i64>(0)
        })?;
        for seq in rows {
            let seq = seq?;
            report.add(
                FindingKind::Inserted,
                Some(seq.max(0) as u64),
                format!("event {seq} is stored but is not in the tree of size {tree_size}"),
            );
        }
    }

    // Upper tiles must be what their leaves make.
    {
        let mut stmt = conn.prepare(
            "SELECT level, idx, data FROM tiles WHERE tenant = ?1 AND level > 0 ORDER BY level, idx",
        )?;
        let rows = stmt.query_map(params![tenant_id], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut stored: BTreeMap<(u8, u64), Vec<u8>> = BTreeMap::new();
        for row in rows {
            let (level, index, data) = row?;
            stored.insert((level.clamp(0, 255) as u8, index.max(0) as u64), data);
        }
        if frontier_broken_at.is_none() {
            for ((level, index), data) in &upper_tiles {
                let path = TileId {
                    level: *level,
                    index: *index,
                    width: (data.len() / 32).clamp(1, 256) as u16,
                }
                .path();
                match stored.get(&(*level, *index)) {
                    Some(found) if found.starts_with(data) => {}
                    Some(_) => report.add(
                        FindingKind::Altered,
                        Some(index * 256u64.pow(*level as u32) + 1),
                        format!("tile {path} does not match the leaves below it"),
                    ),
                    None => report.add(
                        FindingKind::Missing,
                        Some(index * 256u64.pow(*level as u32) + 1),
                        format!("tile {path} is missing"),
                    ),
                }
            }
        }
    }

    // Explain each mismatching row: another seq's event (moved), or changed bytes.
    mismatches.sort_unstable();
    mismatches.truncate(MAX_FINDINGS);
    explain_mismatches(
        conn,
        tenant_id,
        tenant,
        &mismatches,
        &dictionaries,
        &mut report,
    )?;
    report
        .findings
        .sort_by_key(|f| (f.seq.unwrap_or(0), f.kind.as_str()));
    Ok(report)
}

fn read_chunk(
    conn: &Connection,
    tenant_id: i64,
    index: u64,
    lo: u64,
    hi: u64,
) -> Result<Chunk, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, received_at, dict, body FROM events WHERE tenant = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq",
    )?;
    let mut rows = Vec::with_capacity((hi - lo) as usize);
    let mut bodies = Vec::with_capacity((hi - lo) as usize * 256);
    let mut query = stmt.query(params![tenant_id, lo as i64, hi as i64])?;
    while let Some(row) = query.next()? {
        // A body that is not a blob (tampered) reads as empty and is reported as altered.
        let body = row.get_ref(3)?.as_blob().unwrap_or(&[]);
        let start = bodies.len();
        bodies.extend_from_slice(body);
        rows.push((
            row.get::<_, i64>(0)?.max(0) as u64,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
            start..bodies.len(),
        ));
    }
    let mut leaves = vec![None; (hi - lo) as usize];
    let mut tile_stmt = conn.prepare_cached(
        "SELECT idx, data FROM tiles WHERE tenant = ?1 AND level = 0 AND idx >= ?2 AND idx <= ?3",
    )?;
    let first_tile = lo / 256;
    let last_tile = (hi.max(1) - 1) / 256;
    let tiles = tile_stmt.query_map(
        params![tenant_id, first_tile as i64, last_tile as i64],
        |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, Vec<u8>>(1)?)),
    )?;
    for tile in tiles {
        let (tile_index, data) = tile?;
        for (k, hash) in data.chunks_exact(32).enumerate() {
            let leaf_index = tile_index * 256 + k as u64;
            if leaf_index >= lo && leaf_index < hi {
                let mut leaf = [0u8; 32];
                leaf.copy_from_slice(hash);
                leaves[(leaf_index - lo) as usize] = Some(leaf);
            }
        }
    }
    Ok(Chunk {
        index,
        lo,
        hi,
        partial_checkpoints: Vec::new(),
        rows,
        bodies,
        leaves,
    })
}

/// The canonical bytes of a stored row, as they were hashed: its parts with the server
/// fields spliced back in at `seq`.
#[allow(clippy::too_many_arguments)]
fn rebuild(
    decoder: &mut Decoder,
    dictionaries: &HashMap<i64, Arc<Vec<u8>>>,
    tenant: &str,
    seq: u64,
    received_at: i64,
    dict_id: i64,
    blob: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let plain = decoder.decompress_with(dict_id, blob, |id| {
        dictionaries
            .get(&id)
            .cloned()
            .ok_or_else(|| format!("its dictionary {id} is missing"))
    })?;
    let (head, middle, tail) =
        split_plain(plain).ok_or_else(|| "its frame is broken".to_owned())?;
    out.clear();
    let received_at = Timestamp::from_unix_nanos(received_at);
    splice_event(head, middle, tail, received_at, seq, tenant, out);
    Ok(())
}

fn check_chunk(
    chunk: Chunk,
    tenant: &str,
    dictionaries: &HashMap<i64, Arc<Vec<u8>>>,
    decoder: &mut Decoder,
) -> ChunkResult {
    let width = (chunk.hi - chunk.lo) as usize;
    let mut row_hashes: Vec<Option<Hash>> = vec![None; width];
    let mut mismatches = Vec::new();
    let mut undecodable = Vec::new();
    let mut canonical = Vec::with_capacity(4096);
    for (seq, received_at, dict_id, range) in &chunk.rows {
        let blob = &chunk.bodies[range.clone()];
        let offset = (seq - chunk.lo - 1) as usize;
        let rebuilt = rebuild(
            decoder,
            dictionaries,
            tenant,
            *seq,
            *received_at,
            *dict_id,
            blob,
            &mut canonical,
        );
        match rebuilt {
            Ok(()) => {
                let hash = merkle::leaf_hash(&canonical);
                row_hashes[offset] = Some(hash);
                if chunk.leaves[offset].is_some_and(|leaf| leaf != hash) {
                    mismatches.push(*seq);
                }
            }
            Err(why) => {
                // Counted as present (it is not missing), but it cannot match its leaf.
                row_hashes[offset] = Some([0u8; 32]);
                undecodable.push((*seq, format!("event {seq} is stored but {why}")));
            }
        }
    }
    // The tree is built from the recorded leaves (rows were compared with them above); a leaf
    // whose tile is gone is taken from its row.
    let leaves: Vec<Option<Hash>> = chunk
        .leaves
        .iter()
        .zip(&row_hashes)
        .map(|(leaf, row)| leaf.or(*row))
        .collect();
    let broken = leaves.iter().position(Option::is_none);
    let usable = broken.unwrap_or(width);
    let known: Vec<Hash> = leaves[..usable].iter().flatten().copied().collect();
    // Chunks start on tile boundaries (CHUNK is a multiple of 256).
    let tile_roots = known.chunks_exact(256).map(merkle::root_of).collect();
    let partials = chunk
        .partial_checkpoints
        .iter()
        .filter(|size| (**size - chunk.lo) as usize <= usable)
        .map(|size| {
            let end = (size - chunk.lo) as usize;
            let start = end - (size % 256) as usize;
            let mut frontier = merkle::Frontier::new();
            for leaf in &known[start..end] {
                frontier.push(*leaf);
            }
            (*size, frontier.hashes().to_vec())
        })
        .collect();
    ChunkResult {
        index: chunk.index,
        lo: chunk.lo,
        hi: chunk.hi,
        tile_roots,
        broken_at: broken.map(|offset| chunk.lo + offset as u64 + 1),
        partials,
        row_present: chunk
            .rows
            .iter()
            .fold(vec![false; width], |mut present, (seq, ..)| {
                present[(seq - chunk.lo - 1) as usize] = true;
                present
            }),
        mismatches,
        undecodable,
    }
}

/// The tree head of `size` leaves: the frontier over the complete tiles before it, then the
/// perfect subtrees of its partial last tile.
fn add_partial_root(
    roots8: &merkle::Frontier,
    size: u64,
    partial: &[Hash],
    computed: &mut HashMap<u64, Hash>,
) {
    let mut hashes = roots8.hashes().to_vec();
    hashes.extend_from_slice(partial);
    if let Ok(frontier) = merkle::Frontier::from_parts(size, hashes) {
        computed.insert(size, frontier.root());
    }
}

/// The leaf recorded for `leaf_index` in the stored level-0 tiles, cached per tile.
fn tile_leaf(
    conn: &Connection,
    tenant_id: i64,
    leaf_index: u64,
    cache: &mut HashMap<u64, Option<Vec<u8>>>,
) -> Result<Option<Hash>, StoreError> {
    let tile_index = leaf_index / 256;
    if let std::collections::hash_map::Entry::Vacant(slot) = cache.entry(tile_index) {
        let tile: Option<Vec<u8>> = conn
            .query_row(
                "SELECT data FROM tiles WHERE tenant = ?1 AND level = 0 AND idx = ?2",
                params![tenant_id, tile_index as i64],
                |row| row.get(0),
            )
            .optional()?;
        slot.insert(tile);
    }
    let offset = (leaf_index % 256) as usize * 32;
    Ok(cache
        .get(&tile_index)
        .and_then(|tile| tile.as_ref())
        .and_then(|tile| tile.get(offset..offset + 32))
        .and_then(|bytes| bytes.try_into().ok()))
}

/// Explain each row whose hash is not its leaf: the event of another seq (moved there, e.g. two
/// rows swapped), or changed bytes. A moved row is recognised by rebuilding it at each other
/// mismatching seq and finding that seq's recorded leaf.
fn explain_mismatches(
    conn: &Connection,
    tenant_id: i64,
    tenant: &TenantId,
    seqs: &[u64],
    dictionaries: &HashMap<i64, Arc<Vec<u8>>>,
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    let mut decoder = Decoder::default();
    let mut tiles = HashMap::new();
    let mut canonical = Vec::with_capacity(4096);
    for &seq in seqs {
        let row: Option<(i64, i64, Vec<u8>)> = conn
            .query_row(
                "SELECT received_at, dict, body FROM events WHERE tenant = ?1 AND seq = ?2",
                params![tenant_id, seq as i64],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        let mut moved_from = None;
        if let Some((received_at, dict_id, blob)) = row {
            for &other in seqs.iter().filter(|&&other| other != seq) {
                let rebuilt = rebuild(
                    &mut decoder,
                    dictionaries,
                    tenant.as_str(),
                    other,
                    received_at,
                    dict_id,
                    &blob,
                    &mut canonical,
                );
                if rebuilt.is_ok()
                    && tile_leaf(conn, tenant_id, other - 1, &mut tiles)?
                        == Some(merkle::leaf_hash(&canonical))
                {
                    moved_from = Some(other);
                    break;
                }
            }
        }
        match moved_from {
            Some(other) => report.add(
                FindingKind::Reordered,
                Some(seq),
                format!("the row at seq {seq} holds event {other}, unaltered but moved"),
            ),
            None => report.add(
                FindingKind::Altered,
                Some(seq),
                format!("event {seq} does not match the leaf hash recorded for it"),
            ),
        }
    }
    Ok(())
}
