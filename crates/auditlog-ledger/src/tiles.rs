//! The C2SP tlog-tiles layout of the Merkle tree (<https://c2sp.org/tlog-tiles>): tile ids and
//! their paths, the writer that turns appended leaf hashes into tiles, and a `NodeReader` over
//! stored tiles.
//!
//! A tile at tile level `t`, index `n`, holds up to 256 hashes: the hashes of the complete
//! subtrees at tree level `8 * t` with indices `n * 256 ..`, i.e. the spec's
//! `MTH(D[(n * 256 + i) * 256**t : (n * 256 + i + 1) * 256**t])`. The tree levels between two
//! tile levels are not stored; they are recomputed from the tile below. This module does no IO:
//! the caller stores what `TileWriter::take_dirty` returns and hands stored bytes back through the
//! `TileReader` fetch function. Entry bundles (`tile/entries/...`) are not this crate's concern.

use std::fmt::Write as _;

use crate::LedgerError;
use crate::merkle::{Frontier, Hash, NodeReader, node_hash, perfect_root};

/// Tree levels per tile: a tile is a subtree of height 8 (tlog-tiles "Merkle Tree").
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile (2^TILE_HEIGHT); a full tile is 8,192 bytes.
pub const TILE_WIDTH: u64 = 256;

const WIDTH: usize = TILE_WIDTH as usize;
const HASH_LEN: usize = 32;
/// tlog-tiles allows tile levels 0..=63; a u64-sized tree only ever reaches level 7.
const MAX_TILE_LEVEL: u8 = 63;
/// How many fetched tiles a `TileReader` keeps: a consistency proof touches up to four tiles per
/// tile level (two at each tree size).
const CACHE_TILES: usize = 16;

/// One tile of one tree version: its level, its index within the level and how many hashes it
/// holds (1..=256; 256 is a full tile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileId {
    pub level: u8,
    pub index: u64,
    pub width: u16,
}

impl TileId {
    /// Whether this is a full (256-hash, immutable) tile rather than a partial one.
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The tlog-tiles path `tile/<L>/<N>[.p/<W>]`, with `N` in zero-padded 3-digit elements,
    /// all but the last prefixed with `x` (index 1234067 is `x001/x234/067`).
    pub fn path(&self) -> String {
        let mut path = String::with_capacity(40);
        // Writing to a String cannot fail.
        let _ = write!(path, "tile/{}/", self.level);
        let mut groups = [0u16; 7]; // u64::MAX has 20 digits: 7 groups of 3
        let mut n_groups = 0;
        let mut rest = self.index;
        loop {
            groups[n_groups] = (rest % 1000) as u16;
            n_groups += 1;
            rest /= 1000;
            if rest == 0 {
                break;
            }
        }
        for (i, group) in groups[..n_groups].iter().rev().enumerate() {
            if i + 1 < n_groups {
                let _ = write!(path, "x{group:03}/");
            } else {
                let _ = write!(path, "{group:03}");
            }
        }
        if !self.is_full() {
            let _ = write!(path, ".p/{}", self.width);
        }
        path
    }

    /// Parses a tile path in exactly the form `path()` writes; anything else (entry bundles,
    /// leading zeroes, non-canonical index groups, widths outside 1..=255) is an error.
    pub fn parse_path(p: &str) -> Result<TileId, LedgerError> {
        let bad = |reason| LedgerError::TilePath {
            path: p.chars().take(200).collect(),
            reason,
        };
        let rest = p
            .strip_prefix("tile/")
            .ok_or_else(|| bad("does not start with tile/"))?;
        let mut parts: Vec<&str> = rest.split('/').collect();
        if parts.len() < 2 {
            return Err(bad("has no tile index"));
        }
        if parts[0] == "entries" {
            return Err(bad("entry bundles are not hash tiles"));
        }
        let level = parse_decimal(parts[0], 2).ok_or_else(|| bad("level is not a decimal"))?;
        let level = u8::try_from(level)
            .ok()
            .filter(|l| *l <= MAX_TILE_LEVEL)
            .ok_or_else(|| bad("level is above 63"))?;

        let mut width = WIDTH as u16;
        let n = parts.len();
        if n >= 3 && parts[n - 2].ends_with(".p") {
            let w = parse_decimal(parts[n - 1], 3).ok_or_else(|| bad("width is not a decimal"))?;
            if !(1..TILE_WIDTH).contains(&w) {
                return Err(bad("partial width is not in 1..=255"));
            }
            width = w as u16;
            parts.pop();
            let last = parts.len() - 1;
            parts[last] = &parts[last][..parts[last].len() - 2];
        }

        let groups = &parts[1..];
        let mut index: u64 = 0;
        for (i, group) in groups.iter().enumerate() {
            let is_last = i + 1 == groups.len();
            let digits = if is_last {
                *group
            } else {
                group
                    .strip_prefix('x')
                    .ok_or_else(|| bad("inner index element does not start with x"))?
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("index element is not 3 digits"));
            }
            let value: u64 = digits
                .bytes()
                .fold(0, |acc, b| acc * 10 + u64::from(b - b'0'));
            if i == 0 && !is_last && value == 0 {
                return Err(bad("index has a leading zero element"));
            }
            index = index
                .checked_mul(1000)
                .and_then(|x| x.checked_add(value))
                .ok_or_else(|| bad("index is out of range"))?;
        }
        Ok(TileId {
            level,
            index,
            width,
        })
    }
}

/// A decimal with no sign and no leading zeroes, at most `max_digits` long.
fn parse_decimal(s: &str, max_digits: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// `x >> shift`, with every bit shifted out (instead of a panic) once `shift` reaches 64.
fn shr(x: u64, shift: u32) -> u64 {
    x.checked_shr(shift).unwrap_or(0)
}

/// Number of hashes at tile level `t` in a tree of `size` leaves (complete subtrees of 256^t).
fn hashes_at_level(size: u64, t: usize) -> u64 {
    shr(size, TILE_HEIGHT as u32 * t as u32)
}

fn tile_bytes(hashes: &[Hash]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(hashes.len() * HASH_LEN);
    for hash in hashes {
        bytes.extend_from_slice(hash);
    }
    bytes
}

/// The perfect subtree roots of the tree the partial tiles describe, largest (leftmost) first:
/// the highest tile level covers the leftmost leaves, and within a partial tile each set bit of
/// its width is one perfect subtree, largest first.
fn frontier_of(levels: &[PartialTile]) -> Vec<Hash> {
    let mut parts = Vec::with_capacity(64);
    for tile in levels.iter().rev() {
        let mut pos = 0;
        for bit in (0..TILE_HEIGHT).rev() {
            let width = 1usize << bit;
            if tile.len & width != 0 {
                parts.push(perfect_root(&tile.hashes[pos..pos + width]));
                pos += width;
            }
        }
    }
    parts
}

/// The rightmost, not yet full tile of one tile level, as the writer keeps it.
#[derive(Clone)]
struct PartialTile {
    hashes: Box<[Hash; WIDTH]>,
    len: usize,
    /// Appended to since the last `take_dirty`.
    dirty: bool,
}

impl PartialTile {
    fn new() -> Self {
        PartialTile {
            hashes: Box::new([[0u8; HASH_LEN]; WIDTH]),
            len: 0,
            dirty: false,
        }
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let mut tile = PartialTile::new();
        for (slot, chunk) in tile.hashes.iter_mut().zip(bytes.chunks_exact(HASH_LEN)) {
            slot.copy_from_slice(chunk);
            tile.len += 1;
        }
        tile
    }

    fn hashes(&self) -> &[Hash] {
        &self.hashes[..self.len]
    }
}

/// The writer's side of the tiled tree: owns the partial (rightmost) tile of every level, appends
/// leaf hashes, and reports which tiles changed so the caller can store them.
///
/// `append` does not allocate; a tile that fills up is copied out once (every 256 leaves at
/// level 0, every 65,536 at level 1, ...) to be returned by `take_dirty`. A `Frontier` rides
/// along (about one more node hash per leaf) so that `root()` costs O(log n), not a rehash of
/// every partial tile.
#[derive(Clone)]
pub struct TileWriter {
    size: u64,
    frontier: Frontier,
    /// `levels[t]` is the partial tile at tile level `t`; it holds `(size >> 8t) % 256` hashes.
    levels: Vec<PartialTile>,
    /// Tiles that became full since the last `take_dirty`, in the order they filled.
    completed: Vec<(TileId, Vec<u8>)>,
}

impl Default for TileWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for TileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileWriter")
            .field("size", &self.size)
            .field("levels", &self.levels.len())
            .field("completed", &self.completed.len())
            .finish()
    }
}

impl TileWriter {
    /// The writer of an empty tree.
    pub fn new() -> Self {
        TileWriter {
            size: 0,
            frontier: Frontier::new(),
            levels: Vec::new(),
            completed: Vec::new(),
        }
    }

    /// Resume from a stored tree: `size` leaves, and the rightmost tile of every level as stored
    /// (see `right_edge_ids`). Partial tiles are required; the rightmost full tile of a level is
    /// optional and, when given, checked against the hash its parent tile holds for it. A stored
    /// tile wider than the edge of `size` (written for a later size) is cut to the edge.
    pub fn resume(size: u64, right_edge: Vec<(TileId, Vec<u8>)>) -> Result<Self, LedgerError> {
        let ids = Self::right_edge_ids(size);
        let edge_error = |reason: String| LedgerError::RightEdge { size, reason };
        let mut given: Vec<Option<Vec<u8>>> = vec![None; ids.len()];
        for (tile, mut bytes) in right_edge {
            let slot = ids
                .iter()
                .position(|id| id.level == tile.level && id.index == tile.index)
                .ok_or_else(|| edge_error(format!("tile {} is not on the edge", tile.path())))?;
            if given[slot].is_some() {
                return Err(edge_error(format!("tile {} is given twice", tile.path())));
            }
            if tile.width == 0 || u64::from(tile.width) > TILE_WIDTH {
                return Err(edge_error(format!(
                    "tile at level {} index {} has width {}",
                    tile.level, tile.index, tile.width
                )));
            }
            if bytes.len() != usize::from(tile.width) * HASH_LEN {
                return Err(edge_error(format!(
                    "tile {} has {} bytes for {} hashes",
                    tile.path(),
                    bytes.len(),
                    tile.width
                )));
            }
            let need = usize::from(ids[slot].width);
            if usize::from(tile.width) < need {
                return Err(edge_error(format!(
                    "tile {} has {} hashes, {} needed",
                    tile.path(),
                    tile.width,
                    need
                )));
            }
            bytes.truncate(need * HASH_LEN);
            given[slot] = Some(bytes);
        }

        let mut levels = Vec::with_capacity(ids.len());
        for (id, bytes) in ids.iter().zip(&given) {
            if id.is_full() {
                // Its hash already lives one level up; the level starts a new, empty tile.
                levels.push(PartialTile::new());
            } else {
                let bytes = bytes
                    .as_ref()
                    .ok_or_else(|| edge_error(format!("partial tile {} is missing", id.path())))?;
                levels.push(PartialTile::from_bytes(bytes));
            }
        }

        // A full edge tile must hash to the entry its parent tile (always on the edge too, and
        // partial or given) holds for it; a mismatch means the stored tiles are not of one tree.
        for (t, (id, bytes)) in ids.iter().zip(&given).enumerate() {
            let (true, Some(bytes)) = (id.is_full(), bytes) else {
                continue;
            };
            let parent_hash = given
                .get(t + 1)
                .and_then(Option::as_ref)
                .and_then(|parent| {
                    parent
                        .chunks_exact(HASH_LEN)
                        .nth((id.index % TILE_WIDTH) as usize)
                });
            if let Some(parent_hash) = parent_hash
                && parent_hash != perfect_root(&PartialTile::from_bytes(bytes).hashes[..])
            {
                return Err(LedgerError::CorruptTile {
                    level: id.level,
                    index: id.index,
                    reason: "full tile does not hash to the entry of its parent tile".into(),
                });
            }
        }

        let frontier = Frontier::from_parts(size, frontier_of(&levels))?;
        Ok(TileWriter {
            size,
            frontier,
            levels,
            completed: Vec::new(),
        })
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash; a tile that fills up moves its subtree hash one tile level up.
    pub fn append(&mut self, leaf: Hash) {
        self.size += 1;
        self.frontier.push(leaf);
        let mut hash = leaf;
        let mut t = 0;
        loop {
            if t == self.levels.len() {
                self.levels.push(PartialTile::new());
            }
            let tile = &mut self.levels[t];
            tile.hashes[tile.len] = hash;
            tile.len += 1;
            tile.dirty = true;
            if tile.len < WIDTH {
                return;
            }
            // Full: tlog-tiles stores it for good, and its MTH is the next hash one level up.
            hash = perfect_root(&tile.hashes[..]);
            let index = hashes_at_level(self.size, t + 1).saturating_sub(1);
            self.completed.push((
                TileId {
                    level: t as u8,
                    index,
                    width: WIDTH as u16,
                },
                tile_bytes(&tile.hashes[..]),
            ));
            tile.len = 0;
            tile.dirty = false;
            t += 1;
        }
    }

    /// The tree head of the tree of `size()` leaves (RFC 9162 §2.1.1 MTH).
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Tiles touched since the last call, each with its full current content (width*32 bytes):
    /// first the tiles that became full (width 256), then the current partial tiles that changed,
    /// lowest level first. Empty tiles are never reported (tlog-tiles: they must not be served).
    pub fn take_dirty(&mut self) -> Vec<(TileId, Vec<u8>)> {
        let mut out = std::mem::take(&mut self.completed);
        for (t, tile) in self.levels.iter_mut().enumerate() {
            if tile.dirty && tile.len > 0 {
                out.push((
                    TileId {
                        level: t as u8,
                        index: hashes_at_level(self.size, t + 1),
                        width: tile.len as u16,
                    },
                    tile_bytes(tile.hashes()),
                ));
            }
            tile.dirty = false;
        }
        out
    }

    /// The tiles that make up the right edge of a tree of `size` leaves, lowest level first: for
    /// every level with at least one hash, the tile holding its last hash (partial, or full when
    /// the level's hash count is a multiple of 256). This is what `resume` needs.
    pub fn right_edge_ids(size: u64) -> Vec<TileId> {
        let mut ids = Vec::new();
        for t in 0..=usize::from(MAX_TILE_LEVEL) {
            let count = hashes_at_level(size, t);
            if count == 0 {
                break;
            }
            ids.push(TileId {
                level: t as u8,
                index: (count - 1) / TILE_WIDTH,
                width: ((count - 1) % TILE_WIDTH + 1) as u16,
            });
        }
        ids
    }
}

/// What a `TileReader` fetch function returns: the stored bytes of a tile, `None` when it is not
/// stored, or the storage's own error (wrap it in `LedgerError::Fetch`).
pub type FetchedTile = Result<Option<Vec<u8>>, LedgerError>;

/// One tile as fetched, with the subtree hashes inside it precomputed: `rows[r][i]` is the
/// node `r` levels above the tile's hashes at position `i` (only complete nodes).
struct CachedTile {
    level: u8,
    index: u64,
    rows: Vec<Vec<Hash>>,
}

impl CachedTile {
    fn width(&self) -> usize {
        self.rows.first().map_or(0, Vec::len)
    }
}

/// A `NodeReader` over stored tiles. `fetch(level, index)` returns the stored bytes of that tile
/// (possibly partial, i.e. fewer than 256 hashes) or `None`. A node at tree level `L` lives in
/// tile level `L / 8`; when `L % 8 != 0` it is computed from `2^(L % 8)` hashes of that tile.
/// The last few tiles fetched are cached with their inner nodes, so a proof fetches and hashes
/// each tile once.
pub struct TileReader<F> {
    fetch: F,
    /// Most recently used first.
    cache: Vec<CachedTile>,
}

impl<F> TileReader<F>
where
    F: FnMut(u8, u64) -> FetchedTile,
{
    /// A reader that gets tiles from `fetch`.
    pub fn new(fetch: F) -> Self {
        TileReader {
            fetch,
            cache: Vec::with_capacity(CACHE_TILES),
        }
    }

    /// Tile (level, index) with at least `need` hashes, moved to the front of the cache.
    fn tile(&mut self, level: u8, index: u64, need: usize) -> Result<&CachedTile, LedgerError> {
        let cached = self
            .cache
            .iter()
            .position(|c| c.level == level && c.index == index && c.width() >= need);
        if let Some(pos) = cached {
            let hit = self.cache.remove(pos);
            self.cache.insert(0, hit);
        } else {
            let bytes =
                (self.fetch)(level, index)?.ok_or(LedgerError::MissingTile { level, index })?;
            if bytes.is_empty() || bytes.len() % HASH_LEN != 0 || bytes.len() > WIDTH * HASH_LEN {
                return Err(LedgerError::CorruptTile {
                    level,
                    index,
                    reason: format!("{} bytes is not 1 to 256 hashes", bytes.len()),
                });
            }
            let have = bytes.len() / HASH_LEN;
            if have < need {
                return Err(LedgerError::ShortTile {
                    level,
                    index,
                    have,
                    need,
                });
            }
            let mut rows = Vec::with_capacity(usize::from(TILE_HEIGHT));
            rows.push(PartialTile::from_bytes(&bytes).hashes().to_vec());
            for _ in 1..TILE_HEIGHT {
                let below = rows.last().map_or(&[][..], Vec::as_slice);
                let row: Vec<Hash> = below
                    .chunks_exact(2)
                    .map(|pair| node_hash(&pair[0], &pair[1]))
                    .collect();
                rows.push(row);
            }
            // A narrower copy of the same tile is stale now.
            self.cache
                .retain(|c| !(c.level == level && c.index == index));
            self.cache.insert(0, CachedTile { level, index, rows });
            self.cache.truncate(CACHE_TILES);
        }
        Ok(&self.cache[0])
    }
}

impl<F> NodeReader for TileReader<F>
where
    F: FnMut(u8, u64) -> FetchedTile,
{
    fn node(&mut self, level: u8, index: u64) -> Result<Hash, LedgerError> {
        let missing = LedgerError::MissingNode { level, index };
        if level >= 64 {
            return Err(missing);
        }
        let tile_level = level / TILE_HEIGHT;
        let rise = u32::from(level % TILE_HEIGHT);
        // The node covers 2^rise consecutive hashes of its tile level, starting at `first`.
        if index > u64::MAX >> rise {
            return Err(missing);
        }
        let first = index << rise;
        let pos = (first % TILE_WIDTH) as usize;
        let tile = self.tile(tile_level, first / TILE_WIDTH, pos + (1 << rise))?;
        tile.rows
            .get(rise as usize)
            .and_then(|row| row.get(pos >> rise))
            .copied()
            .ok_or(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_edge_follows_the_tlog_tiles_example() {
        // tlog-tiles "Partial Tiles": a tree of size 70,000 has 273 full level 0 tiles, a
        // partial level 0 tile of width 112, one full level 1 tile, a partial level 1 tile of
        // width 17 and a partial level 2 tile of width 1.
        let ids = TileWriter::right_edge_ids(70_000);
        assert_eq!(
            ids,
            vec![
                TileId {
                    level: 0,
                    index: 273,
                    width: 112
                },
                TileId {
                    level: 1,
                    index: 1,
                    width: 17
                },
                TileId {
                    level: 2,
                    index: 0,
                    width: 1
                },
            ]
        );
        // "a tree of size 256 will be represented by a full level 0 tile and a partial level 1
        // tile of width 1"
        assert_eq!(
            TileWriter::right_edge_ids(256),
            vec![
                TileId {
                    level: 0,
                    index: 0,
                    width: 256
                },
                TileId {
                    level: 1,
                    index: 0,
                    width: 1
                },
            ]
        );
        assert!(TileWriter::right_edge_ids(0).is_empty());
        assert_eq!(TileWriter::right_edge_ids(u64::MAX).len(), 8);
    }

    #[test]
    fn path_handles_the_largest_index() {
        let id = TileId {
            level: 0,
            index: u64::MAX,
            width: 256,
        };
        assert_eq!(id.path(), "tile/0/x018/x446/x744/x073/x709/x551/615");
        assert_eq!(TileId::parse_path(&id.path()).ok(), Some(id));
    }
}
